import type { Logger } from '../log.js';
import type { TransportState } from './transport.js';

/**
 * Tells a failure that repeats the one before it from news. A transport retries for as long as its VM is off or
 * held by a viewer, which for a systemd unit waiting for its VM can be days: the first failure, and each
 * different one, deserves a warning and a line on the console; the same one again every 30 seconds does not (it
 * goes to the debug log, `--verbose`). `reset()` once linked, so the next failure is news again.
 */
export class RepeatedFailure {
  #last: string | undefined;

  /** True when `err` has the code and message of the previous failure since the last reset. */
  #isRepeat(err: Error): boolean {
    const key = `${(err as { code?: unknown }).code ?? ''}\n${err.message}`;
    const repeat = key === this.#last;
    this.#last = key;
    return repeat;
  }

  /** Logs a failed attempt (a warning when it is news, debug when it repeats) and returns its 'retrying' state. */
  retrying(error: Error, delayMs: number, log: Logger): TransportState {
    const repeated = this.#isRepeat(error);
    log[repeated ? 'debug' : 'warn']({ code: (error as { code?: string }).code, retryInMs: delayMs }, error.message);
    return { state: 'retrying', detail: `${error.message}; retrying in ${Math.round(delayMs / 1000)} s`, error, retryInMs: delayMs, repeated };
  }

  reset(): void {
    this.#last = undefined;
  }
}
