import { Duplex } from 'node:stream';
import { MuxError } from './errors.js';
import { FRAME_HEADER_SIZE, MAX_FRAME_PAYLOAD } from './frame.js';

/** A Node stream write/final callback. */
export type StreamCallback = (err?: Error | null) => void;

/**
 * How a {@link MuxChannel} hands its work to the session that owns it. Internal to mux/: the session creates
 * the channel together with its link, and users only ever see the Duplex.
 */
export interface ChannelLink {
  /** Queue `chunks` as frames; call `cb` once they have been handed to the transport (or dropped). */
  write(chunks: Buffer[], cb: StreamCallback): void;
  /** Queue `payload` as one frame whose header goes in the bytes before it; `done` once written (or dropped). */
  writeInPlace(payload: Buffer, done: StreamCallback): void;
  /** The writable side ended: queue the size-0 frame; call `cb` once it has been handed over. */
  final(cb: StreamCallback): void;
  /** The channel is being destroyed (by its user, by an overflow or by the session). */
  destroy(err: Error | null): void;
  /** The reader took bytes out of the readable buffer; recount what the channel holds. */
  consumed(): void;
}

/** Stream options the session passes to every channel. */
export interface MuxChannelOptions {
  /** Readable and writable high-water mark in bytes. */
  highWaterMark: number;
}

/**
 * One multiplexed client connection as a Node `Duplex`: the bytes you write leave as mux frames for `id`,
 * the frames the peer sends for `id` are what you read. Channels are made by `MuxSession` (the `'channel'`
 * event in the host role, `open()` in the guest role), never constructed directly.
 *
 * Backpressure is real in both directions. Writing: a write's callback is held until its frames have been
 * handed to the transport, so `write()` returns false and `'drain'` comes late when the transport is slow or
 * other channels have their turn. Reading: what you have not read yet counts against the session's
 * `maxChannelBuffer` and `maxSessionBuffer`; see `MuxSession` for what happens at those bounds.
 *
 * Events besides the Duplex ones: `'hostclose'` (guest role only) when the host sent a size-0 frame for this
 * id. The channel stays open: spice-webdavd ignores host closes too and keeps the client's TCP connection, and
 * the host treats the next bytes on this id as a new connection (protocol.md §a.4).
 */
export class MuxChannel extends Duplex {
  /** The client id on the wire (signed int64). */
  readonly id: bigint;
  readonly #link: ChannelLink;

  /** @internal Made by `MuxSession`. */
  constructor(id: bigint, link: ChannelLink, options: MuxChannelOptions) {
    // allowHalfOpen: the two directions close independently (the wire has one size-0 frame per direction).
    super({ highWaterMark: options.highWaterMark, allowHalfOpen: true });
    this.id = id;
    this.#link = link;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: StreamCallback): void {
    this.#link.write([chunk], cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, cb: StreamCallback): void {
    this.#link.write(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  /**
   * Sends `payload` as one frame without copying it: the 10-byte header is written into the
   * {@link FRAME_HEADER_SIZE} bytes just before `payload` in its ArrayBuffer, so header and payload leave in one
   * transport write. For a reader that owns its buffers (reading a socket into memory it allocated with that
   * headroom): the memory, headroom included, belongs to the channel until `done` is called, once the frame has
   * been written to the transport or dropped (with an error), after which the caller may reuse it. "Written"
   * is the transport's write callback: reuse is safe only over a transport whose callback means it copied the
   * bytes (a socket, a file descriptor), not over an in-memory Duplex that hands the buffer itself on.
   *
   * Bypasses the writable side's buffering and backpressure: the caller bounds how many frames it has in
   * flight, and must not mix this with write() on the same channel (their order would not be kept). end()
   * after the last frame is fine: the size-0 frame queues behind it. Throws `MUX_ERR_BAD_PAYLOAD` for an empty
   * or over-long payload or one without headroom.
   */
  writeInPlace(payload: Buffer, done: StreamCallback): void {
    if (payload.length === 0 || payload.length > MAX_FRAME_PAYLOAD || payload.byteOffset < FRAME_HEADER_SIZE) {
      throw new MuxError(
        'MUX_ERR_BAD_PAYLOAD',
        `writeInPlace needs 1..${MAX_FRAME_PAYLOAD} bytes with ${FRAME_HEADER_SIZE} bytes of headroom before them, got ` +
          `${payload.length} bytes at offset ${payload.byteOffset}`,
      );
    }
    if (this.destroyed || this.writableEnded) {
      done(new MuxError('MUX_ERR_DESTROYED', `mux client ${this.id} is ${this.destroyed ? 'destroyed' : 'ended'}`));
      return;
    }
    this.#link.writeInPlace(payload, done);
  }

  override _final(cb: StreamCallback): void {
    this.#link.final(cb);
  }

  override _read(): void {
    // Nothing to fetch: the session pushes frames as they arrive. Pulling is tracked in read() instead,
    // because _read() is only called again after the next push, which is too coarse for the memory bounds.
  }

  /** Every consumer path (flowing 'data', pipe, async iteration, explicit read) goes through read(). */
  override read(size?: number): Buffer | string | null {
    const chunk = super.read(size) as Buffer | string | null;
    this.#link.consumed();
    return chunk;
  }

  override _destroy(err: Error | null, cb: StreamCallback): void {
    this.#link.destroy(err);
    cb(err);
  }
}
