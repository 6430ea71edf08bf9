/** Reconnection delays: exponential from `initialDelayMs`, doubling, capped at `maxDelayMs`. */
export interface BackoffOptions {
  /** First delay, ms (default 500). */
  initialDelayMs?: number;
  /** Largest delay, ms (default 30000). */
  maxDelayMs?: number;
}

/** Default first reconnection delay. */
export const DEFAULT_INITIAL_DELAY_MS = 500;
/** Default cap on the reconnection delay. */
export const DEFAULT_MAX_DELAY_MS = 30_000;

/** Capped exponential backoff; `reset()` after a connection that worked, so the next loss retries fast. */
export class Backoff {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  #next: number;

  constructor(options: BackoffOptions = {}) {
    this.initialDelayMs = options.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS;
    this.maxDelayMs = Math.max(options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, this.initialDelayMs);
    this.#next = this.initialDelayMs;
  }

  /** The delay to wait now; the one after it doubles, up to the cap. */
  next(): number {
    const d = this.#next;
    this.#next = Math.min(this.#next * 2, this.maxDelayMs);
    return d;
  }

  /** Start again from the initial delay. */
  reset(): void {
    this.#next = this.initialDelayMs;
  }
}
