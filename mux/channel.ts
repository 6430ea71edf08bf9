import { Duplex } from 'node:stream';

/** A Node stream write/final callback. */
export type StreamCallback = (err?: Error | null) => void;

/**
 * How a {@link MuxChannel} hands its work to the session that owns it. Internal to mux/: the session creates
 * the channel together with its link, and users only ever see the Duplex.
 */
export interface ChannelLink {
  /** Queue `chunks` as frames; call `cb` once they have been handed to the transport (or dropped). */
  write(chunks: Buffer[], cb: StreamCallback): void;
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
