/**
 * Password guessing, slowed down. Every source address may get `free` logins wrong; from then on each new wrong one
 * makes the address wait before its next credentials are checked: 1 s, then 2, 4, … up to `maxWaitMs` (60 s), and
 * only one check at a time while it is on probation, so parallel connections do not multiply its guesses. A quiet
 * `forgetMs` (15 min) after its last failure, an address starts afresh.
 *
 * Against an htpasswd file in Apache's default scheme (`$apr1$`, a few thousand checks a second here), this turns
 * an unlimited online attack into about one guess a minute per address. A person who mistypes a few times never
 * notices it. It counts guesses, not requests: from an address with failures, the server does not ask it about
 * credentials the authenticator already knows (`Authenticator.known`), so a client that keeps a saved wrong password,
 * or a logged-in user behind the same NAT address as an attacker, is not held back by it.
 *
 * IPv6 sources are counted per /64, the block one host is given and can pick addresses from at will.
 */

/** Tuning of a {@link LoginThrottle}. */
export interface LoginThrottleOptions {
  /** Failed logins an address may have before it waits. Default 10. */
  free?: number;
  /** The longest wait, in ms. Default 60,000. */
  maxWaitMs?: number;
  /** After how long without a failure an address starts afresh, in ms. Default 15 minutes. */
  forgetMs?: number;
  /** Addresses remembered at most; the one that failed (or was first seen) least recently goes first. Default 4,096. */
  maxSources?: number;
  now?: () => number;
}

interface Source {
  failures: number;
  /** When the last failure came (when the source was first seen, before its first). */
  last: number;
  /** Until when no credentials of this source are checked. */
  until: number;
  /** Checks under way. */
  checking: number;
}

/** The shortest wait, doubled by each failure past the free ones. */
const FIRST_WAIT_MS = 1000;

export class LoginThrottle {
  readonly #free: number;
  readonly #maxWaitMs: number;
  readonly #forgetMs: number;
  readonly #maxSources: number;
  readonly #now: () => number;
  readonly #sources = new Map<string, Source>();

  constructor(options: LoginThrottleOptions = {}) {
    this.#free = options.free ?? 10;
    this.#maxWaitMs = options.maxWaitMs ?? 60_000;
    this.#forgetMs = options.forgetMs ?? 15 * 60_000;
    this.#maxSources = options.maxSources ?? 4096;
    this.#now = options.now ?? Date.now;
  }

  /** Whether `address` has failed logins on record (in its quiet spell or not). */
  hasFailed(address: string): boolean {
    return (this.#sources.get(sourceKey(address))?.failures ?? 0) > 0;
  }

  /**
   * Whether credentials from `address` may be checked now: 0 if so, and the caller then owes one `settle(address,
   * …)` when the check is over; otherwise how many ms the address has to wait.
   */
  admit(address: string): number {
    const key = sourceKey(address);
    const now = this.#now();
    let source = this.#sources.get(key);
    if (source && source.checking === 0 && now - source.last >= this.#forgetMs && now >= source.until) {
      this.#sources.delete(key);
      source = undefined;
    }
    if (source) {
      if (now < source.until) return source.until - now;
      // On probation: a second guess waits for the first one's answer.
      if (source.failures >= this.#free && source.checking > 0) return FIRST_WAIT_MS;
    } else {
      source = { failures: 0, last: now, until: 0, checking: 0 };
      this.#remember(key, source);
    }
    source.checking++;
    return 0;
  }

  /**
   * A check admitted by `admit(address)` is over. When it refused the credentials (`failed`), returns how long the
   * address now waits in ms (0 while it has failures to spare).
   */
  settle(address: string, failed: boolean): number {
    const key = sourceKey(address);
    const source = this.#sources.get(key);
    // Forgotten meanwhile (a flood of other addresses): the check still counts, against a new entry.
    if (!source) return failed ? this.#fail(key, { failures: 0, last: 0, until: 0, checking: 0 }) : 0;
    source.checking = Math.max(0, source.checking - 1);
    return failed ? this.#fail(key, source) : 0;
  }

  #fail(key: string, source: Source): number {
    const now = this.#now();
    source.failures++;
    source.last = now;
    this.#remember(key, source);
    const past = source.failures - this.#free;
    if (past <= 0) return 0;
    const wait = Math.min(FIRST_WAIT_MS * 2 ** Math.min(past - 1, 30), this.#maxWaitMs);
    source.until = now + wait;
    return wait;
  }

  /** Stores `source` as the most recent one, forgetting the least recent when full. */
  #remember(key: string, source: Source): void {
    this.#sources.delete(key);
    if (this.#sources.size >= this.#maxSources) {
      const oldest = this.#sources.keys().next().value;
      if (oldest !== undefined) this.#sources.delete(oldest);
    }
    this.#sources.set(key, source);
  }
}

/**
 * What a throttle counts an address under: an IPv4 address as it is (also when written IPv4-mapped, `::ffff:a.b.c.d`,
 * as a dual-stack listener reports it), an IPv6 one as its /64 prefix in full form, anything else as given.
 */
export function sourceKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!address.includes(':')) return address;
  const bare = address.replace(/%.*$/, '').toLowerCase();
  const halves = bare.split('::');
  if (halves.length > 2) return bare;
  const groups = (s: string | undefined): string[] => (s ? s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const full = halves.length === 2 ? [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0'), ...tail] : head;
  if (full.length !== 8 || !full.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return bare;
  return `${full.slice(0, 4).map((g) => g.padStart(4, '0')).join(':')}::/64`;
}
