/**
 * Failed logins in the server's log, as a warning with the client's address, the user name it gave and what was
 * wrong: what an administrator looks for, and what fail2ban-style watchers count. A client with a saved wrong
 * password (Explorer, davfs2) sends it with every request, so one address, user and reason is logged once a
 * minute, and the next line says how many attempts came in between.
 */
import type { Logger } from '../../src/log.js';
import type { Refusal } from './authenticator.js';

/** How long the same address and reason stay quiet after being logged. */
const QUIET_MS = 60_000;
/** How many characters of a user name a line shows. */
const USER_SHOWN = 128;

export class LoginFailures {
  readonly #now: () => number;
  readonly #seen = new Map<string, { at: number; repeats: number }>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  note(log: Logger, address: string, refusal: Refusal): void {
    // A user name is whatever the client sent: a line shows enough of it to recognise.
    const user = refusal.user?.slice(0, USER_SHOWN);
    const key = `${address}\n${user ?? ''}\n${refusal.reason}`;
    const now = this.#now();
    const seen = this.#seen.get(key);
    if (seen && now - seen.at < QUIET_MS) {
      seen.repeats++;
      return;
    }
    // Bounded whatever the peers do: forgetting only means one more line.
    if (this.#seen.size >= 1024) this.#seen.clear();
    this.#seen.set(key, { at: now, repeats: 0 });
    const repeats = seen?.repeats ? { repeatsSinceLast: seen.repeats } : {};
    log.warn({ address, ...(user === undefined ? {} : { user }), reason: refusal.reason, ...repeats }, 'login failed');
  }
}
