import { SpicedavError } from '../errors.js';

/**
 * Stable codes of every error the SPICE client raises. The message of each error says what to do next;
 * the code is what programs and tests match on.
 */
export type SpiceErrorCode =
  /** TCP/TLS connection to the SPICE server failed (refused, unreachable, DNS). */
  | 'SPICE_ERR_CONNECT'
  /** TLS handshake or certificate verification failed (wrong CA, hostname/subject mismatch). */
  | 'SPICE_ERR_TLS'
  /** The server wants TLS on this channel (link error NEED_SECURED) and no TLS port is known. */
  | 'SPICE_ERR_TLS_REQUIRED'
  /** The server wants plain TCP on this channel (link error NEED_UNSECURED). */
  | 'SPICE_ERR_TLS_NOT_ALLOWED'
  /** A password was sent and the server rejected it (PERMISSION_DENIED). */
  | 'SPICE_ERR_WRONG_PASSWORD'
  /** No password was given and the server refused the link (ticketing on). */
  | 'SPICE_ERR_PERMISSION_DENIED'
  /** The password is longer than SPICE_MAX_PASSWORD_LENGTH (60) bytes. */
  | 'SPICE_ERR_PASSWORD_TOO_LONG'
  /** The server only offers SASL authentication, which spicedav does not implement. */
  | 'SPICE_ERR_SASL_UNSUPPORTED'
  /** The server does not have the requested channel (CHANNEL_NOT_AVAILABLE, or not in CHANNELS_LIST). */
  | 'SPICE_ERR_CHANNEL_NOT_AVAILABLE'
  /** The session id is unknown to the server: the main channel is gone (BAD_CONNECTION_ID). */
  | 'SPICE_ERR_BAD_CONNECTION_ID'
  /** The server speaks another major protocol version (VERSION_MISMATCH). */
  | 'SPICE_ERR_VERSION_MISMATCH'
  /** Any other link error code (ERROR, INVALID_MAGIC, INVALID_DATA, unknown values). */
  | 'SPICE_ERR_LINK_FAILED'
  /** The peer is not a SPICE server, or sent bytes that break the protocol. */
  | 'SPICE_ERR_PROTOCOL'
  /** A message is larger than the configured `maxMessageSize`. */
  | 'SPICE_ERR_MESSAGE_TOO_LARGE'
  /** The link did not complete within `linkTimeoutMs`. */
  | 'SPICE_ERR_TIMEOUT'
  /** The connection ended unexpectedly (server closed it, QEMU exited, another client took over). */
  | 'SPICE_ERR_CONNECTION_LOST'
  /** A SPICE URI that is not spice://HOST:PORT, spice+tls://HOST:TLS_PORT or spice://HOST?port=&tls-port=. */
  | 'SPICE_ERR_INVALID_URI'
  /** The channel or session was closed or destroyed locally. */
  | 'SPICE_ERR_CLOSED';

/** Every error of the SPICE client layer. `linkError` carries the raw SpiceLinkErr value when there is one. */
export class SpiceError extends SpicedavError {
  declare readonly code: SpiceErrorCode;
  /** The SpiceLinkErr value the server sent, when the error comes from a link reply or link result. */
  readonly linkError: number | undefined;

  constructor(code: SpiceErrorCode, message: string, options?: { cause?: unknown; linkError?: number }) {
    super(code, message, options);
    this.linkError = options?.linkError;
  }
}
