import { MuxError } from './errors.js';
import { FRAME_HEADER_SIZE } from './frame.js';

/**
 * Receives each decoded frame. `payload` is empty exactly for a size-0 ("client closed") frame. It may be a view
 * into the chunk given to `push()` (zero-copy), so a handler that keeps it must not let the chunk's owner reuse
 * that memory; transports hand out fresh chunks, so in practice this only matters to hand-written callers.
 * `offset` is where `payload` starts within its frame's payload: always 0, except in streaming mode (see
 * {@link FrameDecoderOptions}), where a frame can arrive in several consecutive pieces.
 */
export type FrameHandler = (id: bigint, payload: Buffer, offset: number) => void;

/** Options of a {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /**
   * `false` (default): every call carries one whole frame. `true`: a frame that straddles chunks is delivered
   * in pieces as its bytes arrive (each non-empty, in order, none from another frame in between, `offset`
   * counting up from 0), so payload bytes are never copied. A multiplexer that forwards bytes to per-client
   * streams wants this: transports cut the stream without regard to frames (Node reads sockets 64 KiB at a time,
   * a full frame is 65545 bytes), so reassembly would copy nearly every payload.
   */
  streaming?: boolean;
}

// The decoder's states, in wire order (see the layout in frame.ts). ENDED is terminal: end() was called or the
// handler threw, and the byte position in the stream is no longer known.
const READ_ID = 0; // collecting the 8-byte int64 LE client id
const READ_SIZE = 1; // collecting the 2-byte uint16 LE size
const READ_DATA = 2; // collecting `size` payload bytes
const ENDED = 3;

const ID_SIZE = 8;
const SIZE_SIZE = FRAME_HEADER_SIZE - ID_SIZE;
const EMPTY = Buffer.alloc(0);
const STATE_NAMES = ['client id', 'size', 'payload'];

/**
 * Incremental decoder for the mux byte stream: feed it chunks of any size with {@link push}, and it calls the
 * handler once per complete frame, in order. It is a pure state machine (READ_ID → READ_SIZE → READ_DATA →
 * READ_ID ...) with no I/O and no timers. Every byte sequence is a valid prefix of some frame stream (ids and
 * sizes have no invalid values), so `push()` never fails on input; the only protocol error is a stream that
 * stops mid-frame, which {@link end} reports as `MUX_ERR_TRUNCATED`.
 *
 * Memory: a payload that lies inside one chunk is delivered as a `subarray` of it (no copy). Only a frame that
 * straddles chunk boundaries is reassembled, into one buffer of exactly its size (≤ 65535 bytes), so the
 * decoder never holds more than one frame; in streaming mode nothing is ever copied or held.
 */
export class FrameDecoder {
  readonly #onFrame: FrameHandler;
  #state = READ_ID;
  /** Bytes collected so far for the current field (id, size) or payload. */
  #have = 0;
  /** Holds a header field that straddles chunks; big enough for the id, the larger of the two. */
  readonly #field = Buffer.allocUnsafe(ID_SIZE);
  #id = 0n;
  /** The id's two 32-bit halves as last read: while they repeat, #id is reused instead of a new bigint. */
  #idLow = 0;
  #idHigh = 0;
  #size = 0;
  /** The payload being reassembled across chunks, allocated at its first byte. */
  #partial: Buffer | null = null;
  readonly #streaming: boolean;
  #frames = 0;

  /** @param onFrame called synchronously from `push()` for every complete frame (or piece, when streaming). */
  constructor(onFrame: FrameHandler, options: FrameDecoderOptions = {}) {
    this.#onFrame = onFrame;
    this.#streaming = options.streaming === true;
  }

  /** Frames whose header has been decoded so far (size-0 frames included). */
  get frames(): number {
    return this.#frames;
  }

  /**
   * Consumes `chunk` and delivers every frame it completes. If the handler throws, the exception propagates
   * and the decoder ends (the rest of the chunk is lost, so later bytes could not be framed); further calls
   * throw `MUX_ERR_DECODER_ENDED`.
   */
  push(chunk: Buffer): void {
    if (this.#state === ENDED) throw new MuxError('MUX_ERR_DECODER_ENDED', 'FrameDecoder.push() after end()');
    try {
      this.#consume(chunk);
    } catch (err) {
      this.#state = ENDED;
      this.#partial = null;
      throw err;
    }
  }

  /**
   * Declares the end of the stream. At a frame boundary this is a clean end; in the middle of a frame it throws
   * `MuxError` `MUX_ERR_TRUNCATED` (the partial frame is discarded). Idempotent once it has returned or thrown.
   */
  end(): void {
    const state = this.#state;
    const have = this.#have;
    this.#state = ENDED;
    this.#partial = null;
    if (state === ENDED || (state === READ_ID && have === 0)) return;
    const where = STATE_NAMES[state] ?? 'frame';
    const id = state === READ_ID ? '' : ` for client ${this.#id}`;
    const need = state === READ_ID ? ID_SIZE : state === READ_SIZE ? SIZE_SIZE : this.#size;
    throw new MuxError(
      'MUX_ERR_TRUNCATED',
      `mux stream ended inside a frame${id}: got ${have} of ${need} ${where} bytes; the peer died or the port was ` +
        'closed mid-write, and the stream cannot be resynchronised (reopen the port)',
    );
  }

  #consume(chunk: Buffer): void {
    const len = chunk.length;
    let off = 0;
    while (off < len) {
      switch (this.#state) {
        case READ_ID: {
          if (this.#have === 0 && len - off >= ID_SIZE) {
            this.#setId(chunk, off);
            off += ID_SIZE;
          } else {
            off = this.#collectField(chunk, off, ID_SIZE);
            if (this.#have < ID_SIZE) return;
            this.#setId(this.#field, 0);
            this.#have = 0;
          }
          this.#state = READ_SIZE;
          break;
        }
        case READ_SIZE: {
          if (this.#have === 0 && len - off >= SIZE_SIZE) {
            this.#size = chunk.readUInt16LE(off);
            off += SIZE_SIZE;
          } else {
            off = this.#collectField(chunk, off, SIZE_SIZE);
            if (this.#have < SIZE_SIZE) return;
            this.#size = this.#field.readUInt16LE(0);
            this.#have = 0;
          }
          this.#frames++;
          if (this.#size === 0) {
            // The state is updated before the handler runs, so a throwing handler leaves a consistent decoder.
            this.#state = READ_ID;
            this.#onFrame(this.#id, EMPTY, 0);
          } else {
            this.#state = READ_DATA;
          }
          break;
        }
        case READ_DATA: {
          const size = this.#size;
          const have = this.#have;
          const n = Math.min(size - have, len - off);
          if (have === 0 && n === size) {
            // The whole payload is inside this chunk: hand out a view, no copy (the chunk itself when it is
            // exactly the payload, as when the sender wrote header and payload separately).
            const payload = off === 0 && size === len ? chunk : chunk.subarray(off, off + size);
            off += size;
            this.#state = READ_ID;
            this.#onFrame(this.#id, payload, 0);
            break;
          }
          if (this.#streaming) {
            const piece = chunk.subarray(off, off + n);
            off += n;
            this.#have = have + n === size ? 0 : have + n;
            if (this.#have === 0) this.#state = READ_ID;
            this.#onFrame(this.#id, piece, have);
            break;
          }
          const partial = (this.#partial ??= Buffer.allocUnsafe(size));
          chunk.copy(partial, have, off, off + n);
          this.#have = have + n;
          off += n;
          if (this.#have < size) return;
          this.#partial = null;
          this.#have = 0;
          this.#state = READ_ID;
          this.#onFrame(this.#id, partial, 0);
          break;
        }
        default:
          return;
      }
    }
  }

  /**
   * Reads the int64 LE id at `off`. Consecutive frames usually carry the same id (a bulk transfer), and two
   * int32 reads and compares cost less than allocating a bigint per frame.
   */
  #setId(buf: Buffer, off: number): void {
    const low = buf.readInt32LE(off);
    const high = buf.readInt32LE(off + 4);
    if (low === this.#idLow && high === this.#idHigh) return;
    this.#idLow = low;
    this.#idHigh = high;
    this.#id = buf.readBigInt64LE(off);
  }

  /** Copies up to the rest of a `width`-byte header field from `chunk` into #field; returns the new offset. */
  #collectField(chunk: Buffer, off: number, width: number): number {
    const n = Math.min(width - this.#have, chunk.length - off);
    chunk.copy(this.#field, this.#have, off, off + n);
    this.#have += n;
    return off + n;
  }
}
