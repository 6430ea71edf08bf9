/**
 * The root of every error spicedav throws on purpose. Each layer (mux, dav, spice, host, guest, cli) has its
 * own errors module with subclasses; every error carries a stable `code` (e.g. `'MUX_ERR_TRUNCATED'`) that
 * callers and tests can match on, while `message` is for people and says what to do next where possible.
 */
export class SpicedavError extends Error {
  /** Stable, machine-readable identifier; never changes once published. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** True when `err` is an Error carrying the given stable code (works across package copies, unlike instanceof). */
export function hasCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
