/**
 * Unix times in seconds as ownCloud's and Nextcloud's clients send them: the `X-OC-Mtime` header of a PUT and the
 * `DAV:lastmodified` property of a PROPPATCH (rclone, sync clients). Decimal seconds, a fraction allowed.
 */
import { DavError } from '../errors.js';

/** The latest time accepted: the end of year 9999, as far as HTTP-dates go. */
const LAST = 253_402_300_799;

/**
 * The seconds `raw` names, or null when it is not a plain decimal number, or falls in the epoch's first day
 * (clients that send 0 or -1 for "unknown" must not stamp a file with 1970), or after year 9999.
 */
export function parseUnixTime(raw: string): number | null {
  const seconds = Number(/^\s*(\d{1,12}(?:\.\d{1,9})?)\s*$/.exec(raw)?.[1]);
  return seconds > 86_400 && seconds <= LAST ? seconds : null;
}

/** The error for a value that parseUnixTime refused: `what` names the header or property, `status` is its method's. */
export function badUnixTime(status: number, code: string, what: string, raw: string): DavError {
  return new DavError(status, code, `${what} must be a Unix time in seconds after 1970-01-02, not "${raw.slice(0, 40)}"`);
}
