import type { Writable } from 'node:stream';
import type { Logger } from '../src/log.js';
import { MuxChannel, type ChannelLink, type StreamCallback } from './channel.js';
import { MuxError } from './errors.js';
import { encodeClose, FRAME_HEADER_SIZE, MAX_FRAME_PAYLOAD, splitFrames } from './frame.js';
import type { FrameScheduler, FrameSource } from './scheduler.js';
import type { MuxStats } from './stats.js';

/** What a channel does when its unread data would exceed `maxChannelBuffer` (see `MuxSessionOptions`). */
export type OverflowPolicy = 'destroy' | 'pause';

/** The session as seen by its slots. */
export interface SlotOwner {
  readonly scheduler: FrameScheduler;
  readonly stats: MuxStats;
  readonly log: Logger;
  readonly maxChannelBuffer: number;
  readonly overflow: OverflowPolicy;
  /** 'pause' policy: ms a channel over its bound may go without its reader consuming anything (0 = forever). */
  readonly stallTimeout: number;
  readonly highWaterMark: number;
  /** False once the transport is gone (or being ended): nothing more may be queued for it. */
  isLive(): boolean;
  /** The unread bytes held by a channel changed by `delta`. */
  adjustBuffered(delta: number): void;
  /** A channel went over (+1) or back under (-1) its bound, under the 'pause' policy. */
  adjustOver(delta: 1 | -1): void;
  /** The slot's id is free again: drop it from the id table. */
  released(slot: ChannelSlot): void;
  /** The slot's channel was destroyed: the session no longer needs to tear it down. */
  gone(slot: ChannelSlot): void;
}

// Slot states. OPEN and ENDING are in the id table and receive data; DEAD is in the id table only to reserve
// the id until our size-0 frame is out (its data is dropped); DETACHED is out of the table.
const OPEN = 0; // both directions open
const ENDING = 1; // our size-0 frame is queued behind the last data; the readable side still receives
const DEAD = 2; // channel destroyed; our size-0 frame is still queued
const DETACHED = 3; // the id is free (our size-0 frame went out, or the peer's arrived in the host role)

/** Writes smaller than this are merged with their neighbours into one frame (a copy, but a small one). */
const COALESCE_BELOW = 4096;
/**
 * Payloads up to this size are copied behind their header and sent as one buffer: one transport write (and
 * one chunk for the peer's decoder) instead of two, for less than the cost of the write it saves.
 */
const INLINE_PAYLOAD_MAX = 1024;
const EMPTY = Buffer.alloc(0);

interface OutItem {
  /**
   * Flattened [header, payload] pairs as encodeFrame returns them, except that a small payload is inlined after
   * its header ([header + payload, EMPTY]); a close item is [header, EMPTY].
   */
  readonly frames: Buffer[];
  pos: number;
  readonly cb: StreamCallback | null;
  readonly close: boolean;
  /** writeInPlace: called once the frame's memory is free again (written to the transport, or dropped). */
  readonly written?: StreamCallback;
}

/**
 * The session's record of one channel: its outbound frame queue (a {@link FrameSource} for the scheduler),
 * the accounting of its unread inbound bytes, and its lifecycle on the wire. It is the channel's
 * {@link ChannelLink}, so the Duplex and the session never reach into each other.
 */
export class ChannelSlot implements ChannelLink, FrameSource {
  readonly id: bigint;
  readonly channel: MuxChannel;
  readonly #owner: SlotOwner;
  #state = OPEN;
  #items: OutItem[] = [];
  /** Unread bytes of this channel currently counted in the session total. */
  #accounted = 0;
  /** Counted in the session's over-bound tally ('pause' policy). */
  #over = false;
  /** While over its bound: fires after `stallTimeout` to check that the reader is still consuming. */
  #stallTimer: NodeJS.Timeout | undefined;
  /** Unread bytes when the stall timer was (re)armed: less at the next check means the reader is moving. */
  #stallMark = 0;
  /** The header of a full 65535-byte frame for this id: immutable, so every full frame shares it. */
  readonly #fullHeader: Buffer;
  /** The id as it goes on the wire (int64 LE), encoded once. */
  readonly #idBytes: Buffer;

  constructor(id: bigint, owner: SlotOwner) {
    this.id = id;
    this.#owner = owner;
    this.channel = new MuxChannel(id, this, { highWaterMark: owner.highWaterMark });
    this.#fullHeader = encodeClose(id);
    this.#fullHeader.writeUInt16LE(MAX_FRAME_PAYLOAD, 8);
    this.#idBytes = this.#fullHeader.subarray(0, 8);
  }

  /** True while data frames for this id belong to this channel. */
  get receiving(): boolean {
    return this.#state === OPEN || this.#state === ENDING;
  }

  /** Hands a data frame's payload to the reader, enforcing `maxChannelBuffer`. Only while `receiving`. */
  deliver(payload: Buffer): void {
    const owner = this.#owner;
    const channel = this.channel;
    const held = channel.readableLength;
    if (owner.overflow === 'destroy' && held + payload.length > owner.maxChannelBuffer) {
      owner.stats.overflows++;
      channel.destroy(
        new MuxError(
          'MUX_ERR_CHANNEL_OVERFLOW',
          `mux client ${this.id}: its reader is ${held} bytes behind and ${payload.length} more arrived, over ` +
            `maxChannelBuffer (${owner.maxChannelBuffer}); read it faster or raise maxChannelBuffer`,
        ),
      );
      return;
    }
    // A small payload that will sit in the buffer would pin the whole transport chunk it is a view of (up to
    // 64 KiB or more for 1 accounted byte); copying it keeps the accounting honest about real memory.
    if ((held > 0 || channel.readableFlowing !== true) && payload.length <= payload.buffer.byteLength >>> 2) {
      payload = Buffer.from(payload);
    }
    channel.push(payload);
    this.consumed();
  }

  /**
   * The peer sent a size-0 frame for this id. Host role: the guest's client is gone, so the id is free now,
   * the reader sees EOF and what the server still writes is dropped. Guest role: only tell the channel
   * (`'hostclose'`); spice-webdavd compatibility requires the connection to stay (protocol.md §a.4).
   */
  remoteClose(role: 'host' | 'guest'): void {
    if (role === 'guest') {
      if (this.receiving) this.channel.emit('hostclose');
      return;
    }
    if (this.#state === DETACHED) return;
    const wasReceiving = this.receiving;
    this.#dropQueued(null);
    this.#detach();
    if (wasReceiving) this.channel.push(null);
  }

  /** Tears the channel down because the session is over (transport lost, or destroyed with or without `err`). */
  kill(err: Error | undefined): void {
    this.channel.destroy(err);
  }

  // ChannelLink ------------------------------------------------------------------------------------------------

  write(chunks: Buffer[], cb: StreamCallback): void {
    if (this.#cannotSend(cb)) return;
    const frames = this.#encode(chunks);
    if (frames.length === 0) {
      cb();
      return;
    }
    this.#items.push({ frames, pos: 0, cb, close: false });
    this.#owner.scheduler.schedule(this);
  }

  writeInPlace(payload: Buffer, done: StreamCallback): void {
    if (this.#cannotSend(done)) return;
    const frame = Buffer.from(payload.buffer, payload.byteOffset - FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + payload.length);
    frame.set(this.#idBytes, 0);
    frame.writeUInt16LE(payload.length, 8);
    this.#items.push({ frames: [frame, EMPTY], pos: 0, cb: null, close: false, written: done });
    this.#owner.scheduler.schedule(this);
  }

  final(cb: StreamCallback): void {
    if (this.#state !== OPEN || !this.#owner.isLive()) {
      cb();
      return;
    }
    this.#state = ENDING;
    this.#queueClose(cb);
  }

  destroy(err: Error | null): void {
    const owner = this.#owner;
    this.consumed();
    owner.gone(this);
    if (this.#state === DETACHED) return;
    const reason = err ?? new MuxError('MUX_ERR_DESTROYED', `mux client ${this.id} was destroyed`);
    const closeQueued = this.#state === ENDING;
    this.#dropQueued(reason);
    if (!owner.isLive()) {
      // Nothing can be sent any more: complete a queued close (its end() has nothing left to wait for).
      this.#dropQueued(null);
      this.#detach();
      return;
    }
    // Tell the peer (size-0) so it drops the client too; keep the id reserved until that frame is out, so a
    // guest-role open() cannot hand it out while the host still thinks it is the old connection.
    this.#state = DEAD;
    if (!closeQueued) this.#queueClose(null);
    owner.log.debug({ id: this.id.toString(), err: err?.message }, 'mux channel destroyed');
  }

  consumed(): void {
    const owner = this.#owner;
    const channel = this.channel;
    const now = channel.destroyed ? 0 : channel.readableLength;
    const delta = now - this.#accounted;
    if (delta !== 0) {
      this.#accounted = now;
      owner.adjustBuffered(delta);
    }
    if (owner.overflow === 'pause') {
      // Hysteresis: over at the bound, back under at half of it, so the transport does not flap per frame.
      const over = now >= owner.maxChannelBuffer ? true : now <= owner.maxChannelBuffer / 2 ? false : this.#over;
      if (over !== this.#over) {
        this.#over = over;
        owner.adjustOver(over ? 1 : -1);
        if (over) this.#armStall();
        else clearTimeout(this.#stallTimer);
      }
    }
  }

  /**
   * A channel over its bound holds the whole transport (every other channel waits). That is right while its
   * reader is merely slower than the link (a disk behind a fast upload): nothing is lost. A reader that
   * consumes nothing at all for `stallTimeout` is stalled, not slow, so the channel is destroyed and the others
   * move again. Progress is measured here, not in `_read`, which Node only calls once the reader has drained
   * the channel below its high-water mark.
   */
  #armStall(): void {
    const timeout = this.#owner.stallTimeout;
    if (!(timeout > 0 && Number.isFinite(timeout))) return;
    this.#stallMark = this.channel.readableLength;
    this.#stallTimer = setTimeout(() => {
      const channel = this.channel;
      if (!this.#over || channel.destroyed) return;
      const held = channel.readableLength;
      if (held < this.#stallMark) {
        this.#stallMark = held;
        this.#stallTimer?.refresh();
        return;
      }
      this.#owner.stats.stalls++;
      channel.destroy(
        new MuxError(
          'MUX_ERR_CHANNEL_STALLED',
          `mux client ${this.id}: its reader consumed nothing for ${timeout} ms while ${held} bytes waited, holding ` +
            'every other connection; closing it so they can move (raise stallTimeout for readers that pause longer)',
        ),
      );
    }, timeout);
    this.#stallTimer.unref();
  }

  // FrameSource ------------------------------------------------------------------------------------------------

  sendNext(transport: Writable): boolean {
    const item = this.#items[0];
    if (item === undefined) return false;
    const header = item.frames[item.pos] as Buffer;
    const payload = item.frames[item.pos + 1] as Buffer;
    // An in-place frame (header and payload in one buffer, no separate payload) goes back to its writer once the
    // transport has really written it.
    transport.write(header, item.written);
    if (payload.length > 0) transport.write(payload);
    const stats = this.#owner.stats;
    stats.framesOut++;
    // An inlined payload travels in the header buffer (see #frame).
    stats.bytesOut += payload.length + header.length - FRAME_HEADER_SIZE;
    item.pos += 2;
    if (item.pos < item.frames.length) return true;
    this.#items.shift();
    if (item.close) {
      // The size-0 frame is out: the id is free (host role: the guest may reuse it for a new connection), and
      // nothing can arrive for this channel any more, so its reader gets EOF.
      const wasReceiving = this.receiving;
      this.#detach();
      if (wasReceiving) this.channel.push(null);
    }
    item.cb?.();
    return this.#items.length > 0;
  }

  // internals --------------------------------------------------------------------------------------------------

  /** True (and `cb` completed) when data for this id cannot be queued: dropped after a close, or no session. */
  #cannotSend(cb: StreamCallback): boolean {
    if (this.#state === DETACHED) {
      // Host role after the guest closed this id: the contract drops what the server still writes.
      cb();
      return true;
    }
    if (!this.#owner.isLive()) {
      cb(new MuxError('MUX_ERR_DESTROYED', `mux client ${this.id}: the session is over`));
      return true;
    }
    return false;
  }

  #queueClose(cb: StreamCallback | null): void {
    this.#items.push({ frames: [encodeClose(this.id), EMPTY], pos: 0, cb, close: true });
    this.#owner.scheduler.schedule(this);
  }

  /** Drops queued data frames, failing their writes with `err` (null: they count as written). */
  #dropQueued(err: Error | null): void {
    const items = this.#items;
    this.#items = [];
    for (const item of items) {
      if (item.close && err !== null) this.#items.push(item);
      else item.cb?.(item.close ? null : err);
      // Dropped before reaching the transport: a writeInPlace buffer is free again (pos > 0 cannot happen: an
      // in-place item is one frame, shifted out as soon as it is handed over).
      item.written?.(err);
    }
    if (this.#items.length === 0) this.#owner.scheduler.unschedule(this);
  }

  #detach(): void {
    this.#state = DETACHED;
    this.#owner.released(this);
    this.#owner.log.debug({ id: this.id.toString() }, 'mux channel closed');
  }

  /**
   * Turns written chunks into frames. Big chunks are framed in place (zero-copy, split at 65535); runs of small
   * ones (HTTP headers, chunked-encoding trailers) are merged first, because a frame per tiny write would cost
   * a transport write and, on the SPICE link, a whole message each.
   */
  #encode(chunks: Buffer[]): Buffer[] {
    const frames: Buffer[] = [];
    if (chunks.length === 1) {
      this.#frame(chunks[0] as Buffer, frames);
      return frames;
    }
    let run: Buffer[] = [];
    let runBytes = 0;
    const flushRun = (): void => {
      if (run.length === 0) return;
      this.#frame(run.length === 1 ? (run[0] as Buffer) : Buffer.concat(run, runBytes), frames);
      run = [];
      runBytes = 0;
    };
    for (const chunk of chunks) {
      if (chunk.length === 0) continue;
      if (chunk.length < COALESCE_BELOW) {
        if (runBytes + chunk.length > MAX_FRAME_PAYLOAD) flushRun();
        run.push(chunk);
        runBytes += chunk.length;
      } else {
        flushRun();
        this.#frame(chunk, frames);
      }
    }
    flushRun();
    return frames;
  }

  /** Appends the [header, payload] pairs of `payload` to `frames`; a small payload rides inside its header. */
  #frame(payload: Buffer, frames: Buffer[]): void {
    const pairs = splitFrames(payload, this.#header, true);
    for (let i = 0; i < pairs.length; i += 2) {
      const p = pairs[i + 1] as Buffer;
      if (p.length <= INLINE_PAYLOAD_MAX) frames.push(this.#inline(p), EMPTY);
      else frames.push(pairs[i] as Buffer, p);
    }
  }

  /** Header and payload in one new buffer (the payload is at most INLINE_PAYLOAD_MAX bytes). */
  #inline(payload: Buffer): Buffer {
    const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
    frame.set(this.#idBytes, 0);
    frame.writeUInt16LE(payload.length, 8);
    frame.set(payload, FRAME_HEADER_SIZE);
    return frame;
  }

  readonly #header = (size: number): Buffer => {
    if (size === MAX_FRAME_PAYLOAD) return this.#fullHeader;
    const h = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
    h.set(this.#idBytes, 0);
    h.writeUInt16LE(size, 8);
    return h;
  };
}
