/**
 * The SPICE webdav multiplexer: the pure frame codec (`encodeFrame`, `encodeClose`, `FrameDecoder`) and the
 * session that runs client connections over one transport (`MuxSession`, `MuxChannel`). Wire format and peer
 * behaviour: ../shared/docs/protocol.md §a; contract: docs/DEVELOPING.md.
 */
export { FrameDecoder, type FrameHandler } from './decoder.js';
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
