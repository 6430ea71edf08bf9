/**
 * Known limits of WebDAV clients that fail on the client's side, where the host's user would otherwise see
 * nothing: each is said once per server, in the log, with its fix.
 */
import type { Logger } from '../src/log.js';

/** Windows' WebClient refuses files over `FileSizeLimitInBytes`: 50,000,000 bytes unless raised. */
export const WEBCLIENT_DEFAULT_LIMIT = 50_000_000;

/** The User-Agent of Windows' WebDAV redirector (the WebClient service behind Explorer and `net use`). */
const WEBCLIENT = /^Microsoft-WebDAV-MiniRedir\//;

/** Says each hint once. */
export class ClientHints {
  readonly #log: Logger;
  readonly #said = new Set<string>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** A GET or PUT body of `bytes` for `path`, by the client named in `userAgent`. */
  transfer(userAgent: string | undefined, bytes: number | undefined, path: string): void {
    if (bytes === undefined || bytes <= WEBCLIENT_DEFAULT_LIMIT || userAgent === undefined || !WEBCLIENT.test(userAgent)) return;
    this.#once('webclient-size', { path, bytes }, 'a Windows client (WebClient) is moving a file over 50 MB: unless its FileSizeLimitInBytes was raised, Windows stops it with error 0x800700DF. Fix in the guest: reg import examples/guest/webclient-filesize.reg, then net stop webclient && net start webclient');
  }

  #once(key: string, fields: Record<string, unknown>, message: string): void {
    if (this.#said.has(key)) return;
    this.#said.add(key);
    this.#log.warn(fields, message);
  }
}
