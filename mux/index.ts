/**
 * The SPICE webdav multiplexer: the pure frame codec (`encodeFrame`, `encodeClose`, `FrameDecoder`) and the
 * session that runs client connections over one transport (`MuxSession`, `MuxChannel`). Wire format and peer
 * behaviour: ../shared/docs/protocol.md §a; contract: docs/DEVELOPING.md.
 */
export { MuxChannel } from './channel.js';
export { FrameDecoder, type FrameHandler, type FrameDecoderOptions } from './decoder.js';
export { MuxError, type MuxErrorCode } from './errors.js';
export {
  FRAME_HEADER_SIZE,
  MAX_FRAME_PAYLOAD,
  MIN_CLIENT_ID,
  MAX_CLIENT_ID,
  assertClientId,
  encodeFrame,
  encodeClose,
} from './frame.js';
export {
  MuxSession,
  DEFAULT_MAX_CHANNEL_BUFFER,
  DEFAULT_MAX_SESSION_BUFFER,
  DEFAULT_MAX_CHANNELS,
  DEFAULT_STALL_TIMEOUT,
  DEFAULT_CHANNEL_HIGH_WATER_MARK,
  type MuxRole,
  type MuxSessionOptions,
  type MuxSessionEvents,
} from './session.js';
export type { OverflowPolicy } from './slot.js';
export type { MuxStats } from './stats.js';
