import { SpicedavError } from '../errors.js';

/**
 * Stable codes of the errors the guest proxy raises. The CLI maps them to exit codes and messages; tests match
 * on them. Never renumber or rename a published code.
 */
export const GuestErrorCode = {
  /** The device string names nothing we can open (unknown scheme, a directory, a regular file...). */
  BAD_DEVICE: 'GUEST_ERR_BAD_DEVICE',
  /** The port exists but cannot be opened for a reason waiting will not fix (permissions, I/O error). */
  DEVICE_OPEN: 'GUEST_ERR_DEVICE_OPEN',
  /** The loopback port is taken (another spice-webdavd or spicedav guest is running). */
  ADDRESS_IN_USE: 'GUEST_ERR_ADDRESS_IN_USE',
  /** The listener could not be bound for another reason (no loopback address, bad port...). */
  LISTEN: 'GUEST_ERR_LISTEN',
  /** A local connection waited `waitForHost` ms for a SPICE client and none came; it was closed cleanly. */
  NO_HOST: 'GUEST_ERR_NO_HOST',
  /** The SPICE client (host) went away; every local connection of that session was closed. */
  HOST_LOST: 'GUEST_ERR_HOST_LOST',
  /**
   * The host closed a connection in the middle of a response (its server failed mid-body): the rest will never
   * come, so the local connection was closed too, and its client sees a short response instead of waiting.
   */
  RESPONSE_CUT: 'GUEST_ERR_RESPONSE_CUT',
  /** start() after close(), or the proxy was closed while something waited on it. */
  CLOSED: 'GUEST_ERR_CLOSED',
} as const;

/** One of the {@link GuestErrorCode} values. */
export type GuestErrorCode = (typeof GuestErrorCode)[keyof typeof GuestErrorCode];

/** Every error the guest side (`src/guest/`) raises on purpose; `code` is one of {@link GuestErrorCode}. */
export class GuestError extends SpicedavError {
  declare readonly code: GuestErrorCode;

  constructor(code: GuestErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
