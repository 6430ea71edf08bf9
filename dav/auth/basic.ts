/**
 * HTTP Basic authentication (RFC 7617) against an Apache htpasswd file. Every scheme `htpasswd` writes that is
 * not broken by design is checked: `$apr1$` (its default) and `$1$` (MD5 crypt), `$2y$`/`$2b$`/`$2a$` (bcrypt,
 * `-B`), `$5$`/`$6$` (SHA-crypt, `-2`/`-5`) and `{SHA}` (`-s`). Entries in another scheme (DES crypt `-d`,
 * plain text `-p`) or a malformed hash make loading fail with the user's name, so a bad file is noticed at
 * start-up rather than as "wrong password". Use it over TLS or loopback: Basic sends the password in the clear.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { DavError } from '../errors.js';
import { sameString } from './crypt-common.js';
import { md5crypt } from './md5crypt.js';
import type { FileAuthenticator, Refusal } from './authenticator.js';
import { slowHashes } from './slow-hash.js';
import { readUserFile } from './user-file.js';

/**
 * Each supported scheme: what its well-formed hashes look like (the salt alphabets as wide as the schemes allow),
 * and how a password is checked against one. bcrypt and SHA-crypt take milliseconds to seconds, by design: they
 * are checked in a worker thread (slow-hash.ts), so that a login never pauses other clients' transfers.
 */
const inWorker = (password: string, hash: string): Promise<boolean> => slowHashes.verify(password, hash);

const SCHEMES: { hash: RegExp; verify: (password: string, hash: string) => boolean | Promise<boolean> }[] = [
  {
    hash: /^\$(?:apr1|1)\$[^$]{0,8}\$[./0-9A-Za-z]{22}$/,
    verify: (password, hash) => {
      const magic = hash.startsWith('$apr1$') ? '$apr1$' : '$1$';
      return sameString(md5crypt(password, hash.slice(magic.length).split('$')[0] ?? '', magic), hash);
    },
  },
  {
    hash: /^\{SHA\}[A-Za-z0-9+/]{27}=$/,
    verify: (password, hash) => sameString(`{SHA}${createHash('sha1').update(password, 'utf8').digest('base64')}`, hash),
  },
  {
    hash: /^\$2[aby]\$(?:0[4-9]|[12]\d|3[01])\$[./0-9A-Za-z]{53}$/,
    verify: inWorker,
  },
  { hash: /^\$5\$(?:rounds=\d{1,10}\$)?[^$]{0,16}\$[./0-9A-Za-z]{43}$/, verify: inWorker },
  { hash: /^\$6\$(?:rounds=\d{1,10}\$)?[^$]{0,16}\$[./0-9A-Za-z]{86}$/, verify: inWorker },
];

/** Check a password against one htpasswd hash (false for a hash of no supported scheme, or a malformed one). */
export async function verifyHtpasswd(password: string, hash: string): Promise<boolean> {
  const scheme = SCHEMES.find((s) => s.hash.test(hash));
  return scheme ? scheme.verify(password, hash) : false;
}

/** Parse htpasswd text into user → hash; throws DAV_ERR_AUTH_FILE on an unsupported scheme, a malformed hash or line. */
export function parseHtpasswd(text: string, source = 'htpasswd file'): Map<string, string> {
  const users = new Map<string, string>();
  for (const [n, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i <= 0) throw new DavError(500, 'DAV_ERR_AUTH_FILE', `${source} line ${n + 1} is not user:hash`);
    const user = line.slice(0, i);
    const hash = line.slice(i + 1);
    if (!SCHEMES.some((scheme) => scheme.hash.test(hash))) {
      throw new DavError(500, 'DAV_ERR_AUTH_FILE', `${source}: user ${user} has a hash this server cannot check (${hash.slice(0, 4)}…: DES crypt, plain text or damaged); recreate it with htpasswd -B (bcrypt) or -5 (SHA-512)`);
    }
    users.set(user, hash);
  }
  return users;
}

/** Adds `key` to a bounded memory of checked credentials (emptied when full: a client just pays a check again). */
function remember<T>(memory: Map<string, T>, key: string, value: T): void {
  if (memory.size >= 1024) memory.clear();
  memory.set(key, value);
}

/** What checked credentials are remembered under: a digest of the whole header, never the password itself. */
function credentialKey(header: string): string {
  return createHash('sha256').update(header).digest('base64');
}

/** Basic authentication from an htpasswd user table. */
export class BasicAuth implements FileAuthenticator {
  readonly realm: string;
  /** The htpasswd file the users came from ('' when they were given). */
  readonly file: string;
  #users: Map<string, string>;
  // Verified credentials, keyed by a digest of the header: a hash check costs from 1,000 MD5 rounds to a bcrypt
  // cost's worth of Blowfish, and a WebDAV client sends its credentials with every request.
  readonly #verified = new Map<string, string>();
  // Refused credentials, by the same key, until the file changes: a client with a saved wrong password (Explorer,
  // davfs2) sends it again with every request, and each would cost a full check that other logins wait behind.
  readonly #refused = new Map<string, Refusal>();
  // Checks under way, by the same key: a client that opens several connections at once with the same new
  // credentials (davfs2, Explorer) pays for one check.
  readonly #checking = new Map<string, Promise<string | Refusal>>();
  // Why each refused request was refused, for the log.
  readonly #refusals = new WeakMap<IncomingMessage, Refusal>();

  constructor(users: Map<string, string>, realm = 'spicedav', file = '') {
    this.#users = users;
    this.realm = realm;
    this.file = file;
  }

  /** Load an htpasswd file. */
  static async fromFile(path: string, realm?: string): Promise<BasicAuth> {
    return new BasicAuth(parseHtpasswd(await readUserFile(path, 'htpasswd'), path), realm, path);
  }

  async reload(): Promise<number> {
    if (!this.file) throw new Error('BasicAuth.reload: these users were not loaded from a file');
    const users = parseHtpasswd(await readUserFile(this.file, 'htpasswd'), this.file);
    // What was verified against the old table (a password since changed) must be checked again.
    this.#users = users;
    this.#verified.clear();
    this.#refused.clear();
    this.#checking.clear();
    return users.size;
  }

  async check(req: IncomingMessage): Promise<string | null> {
    const outcome = await this.#outcome(req.headers.authorization);
    if (outcome === null || typeof outcome === 'string') return outcome;
    this.#refusals.set(req, outcome);
    return null;
  }

  /** The user that an Authorization header proves, why it does not, or null when there is none. */
  async #outcome(header: string | undefined): Promise<string | Refusal | null> {
    if (header === undefined) return null;
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!m) return { reason: /^Basic\s/i.test(header) ? 'malformed Basic credentials' : 'not Basic credentials' };
    const key = credentialKey(header);
    const known = this.#verified.get(key);
    if (known !== undefined && this.#users.has(known)) return known;
    const refused = this.#refused.get(key);
    if (refused) return refused;
    let checking = this.#checking.get(key);
    if (!checking) {
      checking = this.#verify(m[1] as string, key).finally(() => this.#checking.delete(key));
      this.#checking.set(key, checking);
    }
    return checking;
  }

  /** The user that the base-64 `user:password` names if the password is right, else why not; remembered under `key`. */
  async #verify(credentials: string, key: string): Promise<string | Refusal> {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return { reason: 'malformed Basic credentials (no colon)' };
    const user = decoded.slice(0, i);
    const users = this.#users;
    const hash = users.get(user);
    const ok = hash !== undefined && (await verifyHtpasswd(decoded.slice(i + 1), hash));
    const outcome = ok ? user : { reason: hash === undefined ? 'unknown user' : 'wrong password', user };
    // Reloaded while the hash was checked: the answer holds for this request, but is not remembered.
    if (users === this.#users) {
      if (typeof outcome === 'string') remember(this.#verified, key, outcome);
      else remember(this.#refused, key, outcome);
    }
    return outcome;
  }

  known(req: IncomingMessage): boolean {
    const header = req.headers.authorization;
    if (header === undefined) return false;
    const key = credentialKey(header);
    const user = this.#verified.get(key);
    return (user !== undefined && this.#users.has(user)) || this.#refused.has(key);
  }

  challenges(_req: IncomingMessage): string[] {
    return [`Basic realm="${this.realm.replace(/"/g, "'")}", charset="UTF-8"`];
  }

  refusal(req: IncomingMessage): Refusal | null {
    return this.#refusals.get(req) ?? null;
  }
}
