import type { IncomingMessage } from 'node:http';

/**
 * Checks the credentials of a request on a listener that requires them. `challenges()` are the
 * WWW-Authenticate values sent with a 401. Implementations: BasicAuth (htpasswd), DigestAuth (htdigest).
 */
export interface Authenticator {
  /** The user name when the request carries valid credentials, else null. */
  check(req: IncomingMessage): Promise<string | null>;
  /** WWW-Authenticate header values for a 401 answer to `req` (after `check` refused it). */
  challenges(req: IncomingMessage): string[];
  /**
   * Why `check` refused the credentials that `req` carried, for the server's log (never sent to the client); null
   * when the refusal is part of the protocol rather than a failed login (an expired Digest nonce, which clients
   * renew without asking the user). Optional: without it, every refused Authorization header is logged as such.
   */
  refusal?(req: IncomingMessage): Refusal | null;
  /**
   * Whether the answer for the credentials `req` carries is already known (checked before and remembered), so that
   * `check` costs no password hash and tells a guesser nothing new: the login throttle lets such requests through
   * and does not count them. Asked only of requests from an address with failed logins, before `check`. Optional:
   * without it, every request with credentials counts as a guess.
   */
  known?(req: IncomingMessage): boolean;
}

/** A failed login as the log shows it: what was wrong, and the user name the client gave when it gave one. */
export interface Refusal {
  reason: string;
  user?: string;
}

/** An authenticator whose user table comes from a file (htpasswd, htdigest) and can be read again. */
export interface FileAuthenticator extends Authenticator {
  /** The user file. */
  readonly file: string;
  /**
   * Read the file again and use its users from the next request on; resolves to their number. An unreadable or
   * malformed file throws (`DAV_ERR_AUTH_FILE`) and leaves the users as they were.
   */
  reload(): Promise<number>;
}
