import { SpicedavError } from '../src/errors.js';

/**
 * The stable codes a {@link MuxError} can carry. Callers match on these (see `hasCode`); they never change
 * once published.
 *
 * - `MUX_ERR_TRUNCATED`: the transport ended in the middle of a frame. The mux has no resync marker, so the
 *   stream is unusable from there on (protocol.md §a.6).
 * - `MUX_ERR_TRANSPORT_CLOSED`: the transport ended, failed or was closed under the session; every channel is
 *   destroyed with this code (the cause, if any, is attached).
 * - `MUX_ERR_CHANNEL_OVERFLOW`: a channel's reader fell more than `maxChannelBuffer` bytes behind its peer
 *   (`onChannelOverflow: 'destroy'`).
 * - `MUX_ERR_CHANNEL_STALLED`: a channel over its bound whose reader consumed nothing for `stallTimeout`.
 * - `MUX_ERR_DESTROYED`: the session or channel was destroyed (or closed) and the operation can no longer run:
 *   `open()` after close, a write that was still waiting when its channel or session went away.
 * - `MUX_ERR_BAD_ID`: a client id that is not a signed 64-bit integer.
 * - `MUX_ERR_ROLE`: an operation the session's role does not allow (e.g. `open()` in the host role).
 * - `MUX_ERR_CHANNEL_LIMIT`: `open()` while `maxChannels` channels are open.
 * - `MUX_ERR_DECODER_ENDED`: bytes pushed into a `FrameDecoder` after `end()` or after its frame handler threw.
 * - `MUX_ERR_BAD_PAYLOAD`: `writeInPlace()` with an empty or over-long payload, or one without header headroom.
 */
export type MuxErrorCode =
  | 'MUX_ERR_TRUNCATED'
  | 'MUX_ERR_TRANSPORT_CLOSED'
  | 'MUX_ERR_CHANNEL_OVERFLOW'
  | 'MUX_ERR_CHANNEL_STALLED'
  | 'MUX_ERR_DESTROYED'
  | 'MUX_ERR_BAD_ID'
  | 'MUX_ERR_ROLE'
  | 'MUX_ERR_CHANNEL_LIMIT'
  | 'MUX_ERR_DECODER_ENDED'
  | 'MUX_ERR_BAD_PAYLOAD';

/** Every error the multiplexer raises on purpose: a {@link SpicedavError} with a {@link MuxErrorCode}. */
export class MuxError extends SpicedavError {
  declare readonly code: MuxErrorCode;

  constructor(code: MuxErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
