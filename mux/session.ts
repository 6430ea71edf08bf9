import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../src/log.js';
import type { MuxChannel } from './channel.js';
import { FrameDecoder } from './decoder.js';
import { MuxError } from './errors.js';
import { MAX_CLIENT_ID, MIN_CLIENT_ID } from './frame.js';
import { FrameScheduler } from './scheduler.js';
import { ChannelSlot, type OverflowPolicy, type SlotOwner } from './slot.js';
import { createMuxStats, type MuxStats } from './stats.js';

/**
 * Which end of the mux a session is. `'host'`: the side with the WebDAV server (spice-gtk's role); channels
 * appear when the guest sends data on a new id. `'guest'`: the proxy inside the VM (spice-webdavd's role);
 * it allocates ids with `open()`.
 */
export type MuxRole = 'host' | 'guest';

/** Options of a {@link MuxSession}. Every limit has a default sized for WebDAV traffic over a SPICE port. */
export interface MuxSessionOptions {
  role: MuxRole;
  /**
   * Unread bytes one channel may hold (default {@link DEFAULT_MAX_CHANNEL_BUFFER}, 16 MiB). What happens when
   * data for it would exceed this is set by `onChannelOverflow`.
   */
  maxChannelBuffer?: number;
  /**
   * Unread bytes all channels together may hold before the session stops reading the transport (default
   * {@link DEFAULT_MAX_SESSION_BUFFER}, 64 MiB); reading resumes once they fall to half of it. The real peak
   * can exceed it by one transport chunk, the one being decoded when the bound was hit.
   */
  maxSessionBuffer?: number;
  /**
   * What happens when one channel's unread data reaches `maxChannelBuffer`. The protocol has no per-channel flow
   * control, so the only choices are to stop reading the transport or to drop that channel.
   * `'pause'` (default): the transport is paused until that channel is read down again; nothing is ever lost,
   * and other channels wait meanwhile. A reader slower than the link (a disk behind a fast upload) is the
   * common case and must not lose the upload. A reader that consumes nothing for `stallTimeout` is destroyed
   * with `MUX_ERR_CHANNEL_STALLED`, so one stalled client holds the others back for that long at most.
   * `'destroy'`: the channel is destroyed at once with `MUX_ERR_CHANNEL_OVERFLOW` and the others never wait;
   * only for peers known to be slower than every reader.
   */
  onChannelOverflow?: OverflowPolicy;
  /**
   * `'pause'` policy: milliseconds a channel over its bound may go without its reader consuming a byte before it
   * is destroyed with `MUX_ERR_CHANNEL_STALLED` (default by role, {@link DEFAULT_STALL_TIMEOUT}; 0 = never).
   */
  stallTimeout?: number;
  /**
   * Channels open at once (default {@link DEFAULT_MAX_CHANNELS}). Host role: data on a new id beyond it is
   * dropped (counted in `stats.channelsRefused`); guest role: `open()` throws `MUX_ERR_CHANNEL_LIMIT`.
   */
  maxChannels?: number;
  /** Each channel's readable and writable high-water mark in bytes (default {@link DEFAULT_CHANNEL_HIGH_WATER_MARK}). */
  channelHighWaterMark?: number;
  /** Where debug lines per channel open/close and pause/resume go (default: nowhere). */
  log?: Logger;
}

/** Default `maxChannelBuffer`: 16 MiB, several seconds of a fast SPICE link, for one lagging reader. */
export const DEFAULT_MAX_CHANNEL_BUFFER = 16 * 1024 * 1024;
/** Default `maxSessionBuffer`: 64 MiB across all channels. */
export const DEFAULT_MAX_SESSION_BUFFER = 64 * 1024 * 1024;
/**
 * Default `stallTimeout` by role. Host: the readers are the WebDAV server's disk writes, slow at times but never
 * idle for long, and cutting one loses an upload: 15 s outlasts any disk hiccup. Guest: the readers are local
 * applications (a paused copy dialog, a stopped download), which do stop reading, and every other connection
 * waits meanwhile: 2 s.
 */
export const DEFAULT_STALL_TIMEOUT: Readonly<Record<MuxRole, number>> = Object.freeze({ host: 15_000, guest: 2_000 });
/** Default `maxChannels`: far above what WebDAV clients open (a handful each), low enough to bound memory. */
export const DEFAULT_MAX_CHANNELS = 4096;
/** Default `channelHighWaterMark`: 64 KiB, about one full frame. */
export const DEFAULT_CHANNEL_HIGH_WATER_MARK = 64 * 1024;

// Session states.
const RUNNING = 0;
const CLOSING = 1; // close(): channels are ending, their last frames are flushing
const ENDING = 2; // every frame is out; transport.end() called, waiting for 'finish'
const CLOSED = 3;

/**
 * The session's events. `channel`: host role, the guest opened a connection (first data on an unknown or freed
 * id). `close`: once, the session is over; `err` is set when it ended because of transport loss or
 * `destroy(err)`, unset after `close()` or `destroy()`.
 */
export interface MuxSessionEvents {
  channel: [channel: MuxChannel];
  close: [err?: Error];
}

/**
 * One end of the SPICE webdav multiplexer over a `Duplex` transport (the SPICE port stream, a virtio port, a
 * socket, or an in-memory pair). Each client connection is a {@link MuxChannel}. The session owns the
 * transport: `close()` ends it, `destroy()` and transport loss destroy it.
 *
 * Roles (docs/DEVELOPING.md, "Contracts between layers"; protocol.md §a.3–a.5):
 * - host: the first data frame on an unknown id emits `'channel'`. A size-0 frame from the guest frees the id
 *   at once (later data on it is a new channel), ends the channel's readable side, and drops what is still
 *   written to it. `channel.end()` sends a size-0 frame and frees the id too. Size-0 for an unknown id is
 *   ignored.
 * - guest: `open()` allocates ids from a counter, skipping live ones. A size-0 frame from the host does not end
 *   the channel (it emits `'hostclose'`). Frames for unknown ids are dropped. `channel.end()` sends size-0 and
 *   frees the id.
 *
 * Outbound, frames of all channels share the transport round-robin, one frame per ready channel per turn; see
 * {@link FrameScheduler}.
 *
 * Inbound memory. The wire protocol has no per-channel flow control: the only way to slow one sender is to stop
 * reading the transport, which stops every channel (the head-of-line blocking both reference daemons have,
 * protocol.md §a.8–a.9). So each channel buffers what its reader has not taken, up to `maxChannelBuffer`, and
 * a slow reader never blocks the others while it stays under that bound. At the bound the transport is paused
 * until the reader catches up (`onChannelOverflow: 'pause'`, the default): a reader slower than the link, such
 * as a disk behind a fast upload, must never cost the upload. A reader that consumes nothing for `stallTimeout`
 * is stalled rather than slow; its channel is destroyed with `MUX_ERR_CHANNEL_STALLED` so the others move on.
 * The transport is also paused when all channels together reach `maxSessionBuffer`. Memory is bounded whatever
 * the peer sends: per channel by `maxChannelBuffer`, in total by `maxSessionBuffer` plus one transport chunk, in
 * channels by `maxChannels`.
 *
 * Transport end, error or close destroys every channel with `MUX_ERR_TRANSPORT_CLOSED` (cause attached; a stream
 * cut mid-frame has a `MUX_ERR_TRUNCATED` cause). Events: `'channel'` (host role), `'close'` (once).
 */
export class MuxSession extends EventEmitter<MuxSessionEvents> {
  /** The role given at construction. */
  readonly role: MuxRole;
  /** Live counters; see {@link MuxStats}. */
  readonly stats: MuxStats = createMuxStats();

  readonly #transport: Duplex;
  readonly #log: Logger;
  readonly #decoder: FrameDecoder;
  readonly #scheduler: FrameScheduler;
  readonly #owner: SlotOwner;
  readonly #maxSessionBuffer: number;
  readonly #maxChannels: number;
  /** Live ids: OPEN, ENDING, and DEAD slots whose size-0 frame is still queued. */
  readonly #ids = new Map<bigint, ChannelSlot>();
  /** Every slot whose channel is not destroyed yet, including host-role channels whose id was freed. */
  readonly #slots = new Set<ChannelSlot>();
  #state = RUNNING;
  #buffered = 0;
  #over = 0;
  #paused = false;
  #nextId = 1n;
  readonly #closed: Promise<void>;
  #resolveClosed!: () => void;

  /** Starts reading `transport` at once; the session is usable as soon as it is constructed. */
  constructor(transport: Duplex, options: MuxSessionOptions) {
    super();
    if (options.role !== 'host' && options.role !== 'guest') {
      throw new MuxError('MUX_ERR_ROLE', `MuxSession role must be 'host' or 'guest', got ${String(options.role)}`);
    }
    const overflow = options.onChannelOverflow ?? 'pause';
    if (overflow !== 'destroy' && overflow !== 'pause') {
      throw new TypeError(`onChannelOverflow must be 'destroy' or 'pause', got ${String(overflow)}`);
    }
    this.role = options.role;
    this.#transport = transport;
    this.#log = (options.log ?? silentLogger).child({ component: 'mux', role: options.role });
    this.#maxSessionBuffer = limit('maxSessionBuffer', options.maxSessionBuffer, DEFAULT_MAX_SESSION_BUFFER);
    this.#maxChannels = limit('maxChannels', options.maxChannels, DEFAULT_MAX_CHANNELS);
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#scheduler = new FrameScheduler(transport);
    // Streaming: channels are byte streams, so payload pieces go to them as they arrive, never copied.
    this.#decoder = new FrameDecoder(this.#onFrame, { streaming: true });

    this.#owner = {
      scheduler: this.#scheduler,
      stats: this.stats,
      log: this.#log,
      maxChannelBuffer: limit('maxChannelBuffer', options.maxChannelBuffer, DEFAULT_MAX_CHANNEL_BUFFER),
      overflow,
      stallTimeout: options.stallTimeout === 0 ? 0 : limit('stallTimeout', options.stallTimeout, DEFAULT_STALL_TIMEOUT[options.role]),
      highWaterMark: limit('channelHighWaterMark', options.channelHighWaterMark, DEFAULT_CHANNEL_HIGH_WATER_MARK),
      isLive: () => this.#state === RUNNING || this.#state === CLOSING,
      adjustBuffered: (delta) => {
        this.#buffered += delta;
        if (this.#buffered > this.stats.peakBufferedBytes) this.stats.peakBufferedBytes = this.#buffered;
        this.#updateFlow();
      },
      adjustOver: (delta) => {
        this.#over += delta;
        this.#updateFlow();
      },
      released: (slot) => {
        if (this.#ids.get(slot.id) === slot) this.#ids.delete(slot.id);
        this.#maybeEndTransport();
      },
      gone: (slot) => {
        this.#slots.delete(slot);
      },
    };

    transport.on('data', this.#onData);
    transport.on('end', this.#onEnd);
    transport.on('error', this.#onError);
    transport.on('close', this.#onClose);
    transport.on('finish', this.#onFinish);
    if (transport.destroyed || transport.readableEnded) process.nextTick(this.#onClose);
  }

  /** Number of live client ids (channels that are open or whose size-0 frame is still on its way out). */
  get channelCount(): number {
    return this.#ids.size;
  }

  /** Unread bytes all channels hold right now (the quantity `maxSessionBuffer` bounds). */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /**
   * Guest role: a new client connection with a fresh id (never one that is live). Nothing is sent until the
   * first write; the host learns of the id from its first data frame. Throws `MUX_ERR_ROLE` in the host role,
   * `MUX_ERR_DESTROYED` once the session is closing or closed, `MUX_ERR_CHANNEL_LIMIT` at `maxChannels`.
   */
  open(): MuxChannel {
    if (this.role !== 'guest') {
      throw new MuxError('MUX_ERR_ROLE', 'MuxSession.open() is for the guest role; in the host role channels come from the guest');
    }
    if (this.#state !== RUNNING) throw new MuxError('MUX_ERR_DESTROYED', 'MuxSession.open() on a closed session');
    if (this.#ids.size >= this.#maxChannels) {
      throw new MuxError('MUX_ERR_CHANNEL_LIMIT', `${this.#ids.size} mux channels are open (maxChannels); close some first`);
    }
    const id = nextFreeId(this.#nextId, (candidate) => this.#ids.has(candidate));
    this.#nextId = successor(id);
    return this.#register(id).channel;
  }

  /**
   * Ends the session gracefully: no new channels; every channel's writable side is ended, so what was written
   * goes out followed by its size-0 frame; then the transport is ended. Resolves once the session is closed
   * (`'close'` emitted). Channels keep what they have received until it is read. Idempotent; never rejects. If
   * the transport stops accepting data it waits for it; call `destroy()` to give up.
   */
  close(): Promise<void> {
    if (this.#state === RUNNING) {
      this.#state = CLOSING;
      this.#log.debug({ channels: this.#ids.size }, 'mux session closing');
      for (const slot of [...this.#slots]) {
        if (!slot.channel.writableEnded) slot.channel.end();
      }
      this.#maybeEndTransport();
    }
    return this.#closed;
  }

  /**
   * Aborts now: queued frames are dropped, the transport is destroyed, and every channel is destroyed with `err`
   * (which its `'error'` listeners see) or, without one, closed the way `stream.destroy()` closes a stream: no
   * `'error'` event, and writes still waiting fail with `MUX_ERR_DESTROYED`. Resolves once `'close'` has been
   * emitted. Idempotent; never rejects.
   */
  destroy(err?: Error): Promise<void> {
    if (this.#state !== CLOSED) {
      this.#teardown(true, err);
      this.#transport.destroy();
    }
    return this.#closed;
  }

  // transport events -------------------------------------------------------------------------------------------

  readonly #onData = (chunk: Buffer): void => {
    if (this.#state === CLOSED) return;
    try {
      this.#decoder.push(chunk);
    } catch (err) {
      // Only a listener of ours ('channel', 'hostclose', 'data' run synchronously) can throw here. Ending the
      // session is the one safe answer: the decoder lost its place in the stream.
      void this.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  };

  readonly #onEnd = (): void => {
    if (this.#state === ENDING || this.#state === CLOSED) return;
    let cause: unknown;
    try {
      this.#decoder.end();
    } catch (err) {
      cause = err;
    }
    this.#lost('the mux transport ended (the peer closed the port)', cause);
  };

  readonly #onError = (err: Error): void => {
    this.#lost(`the mux transport failed: ${err.message}`, err);
  };

  readonly #onClose = (): void => {
    if (this.#state === ENDING && this.#transport.writableFinished) this.#onFinish();
    else this.#lost('the mux transport was closed');
  };

  readonly #onFinish = (): void => {
    if (this.#state === ENDING) this.#teardown(false);
    else this.#lost('the mux transport was ended by someone else');
  };

  // inbound ----------------------------------------------------------------------------------------------------

  /** One frame, or (streaming decoder) one piece of a frame's payload starting at `offset`. */
  readonly #onFrame = (id: bigint, payload: Buffer, offset: number): void => {
    const stats = this.stats;
    if (offset === 0) stats.framesIn++;
    stats.bytesIn += payload.length;
    if (this.#state !== RUNNING && this.#state !== CLOSING) {
      if (payload.length > 0 && offset === 0) stats.framesDropped++;
      return;
    }
    const slot = this.#ids.get(id);
    if (payload.length === 0) {
      // Size 0: the peer closed `id`. Unknown ids are ignored, as spice-gtk does (protocol.md §a.4).
      slot?.remoteClose(this.role);
      return;
    }
    if (slot !== undefined) {
      if (slot.receiving) slot.deliver(payload);
      else if (offset === 0) stats.framesDropped++;
      return;
    }
    // The rest of a frame whose start found no channel (dropped, refused, or its channel went away meanwhile)
    // is dropped too: it must never start a connection in the middle of a frame.
    if (offset > 0) return;
    if (this.role === 'guest' || this.#state !== RUNNING) {
      // Guest role: the host never opens connections (spice-webdavd drops these silently too).
      stats.framesDropped++;
      return;
    }
    this.#accept(id, payload);
  };

  /** Host role: data on an unknown id is a new connection from the guest. */
  #accept(id: bigint, payload: Buffer): void {
    if (this.#ids.size >= this.#maxChannels) {
      this.stats.channelsRefused++;
      this.stats.framesDropped++;
      this.#log.warn({ id: id.toString(), maxChannels: this.#maxChannels }, 'mux: too many clients, frame dropped');
      return;
    }
    const slot = this.#register(id);
    let listened: boolean;
    try {
      listened = this.emit('channel', slot.channel);
    } catch (err) {
      // The listener failed before it could attach an 'error' listener: close this channel quietly, so that
      // only the session (via #onData) reports the error instead of an unhandled 'error' event on the channel.
      slot.channel.destroy();
      throw err;
    }
    if (!listened) {
      this.#log.warn({ id: id.toString() }, "mux: no 'channel' listener, connection refused");
      slot.channel.destroy();
    }
    if (slot.receiving) slot.deliver(payload);
    else this.stats.framesDropped++;
  }

  #register(id: bigint): ChannelSlot {
    const slot = new ChannelSlot(id, this.#owner);
    this.#ids.set(id, slot);
    this.#slots.add(slot);
    this.stats.channelsOpened++;
    this.#log.debug({ id: id.toString() }, 'mux channel opened');
    return slot;
  }

  /** Pauses the transport at the bounds and resumes it below the low-water marks (see the class comment). */
  #updateFlow(): void {
    if (this.#state === CLOSED) return;
    if (!this.#paused) {
      if (this.#buffered >= this.#maxSessionBuffer || this.#over > 0) {
        this.#paused = true;
        this.stats.transportPauses++;
        this.#transport.pause();
        this.#log.debug({ buffered: this.#buffered, overChannels: this.#over }, 'mux transport paused');
      }
    } else if (this.#buffered <= this.#maxSessionBuffer / 2 && this.#over === 0) {
      this.#paused = false;
      this.#transport.resume();
      this.#log.debug({ buffered: this.#buffered }, 'mux transport resumed');
    }
  }

  // lifecycle --------------------------------------------------------------------------------------------------

  /** close(): once every size-0 frame is out, end the transport. */
  #maybeEndTransport(): void {
    if (this.#state !== CLOSING || this.#ids.size > 0 || !this.#scheduler.idle) return;
    this.#state = ENDING;
    // Deferred: this can run inside the scheduler's corked loop, which must not find the transport ended.
    process.nextTick(() => {
      if (this.#state === ENDING) this.#transport.end();
    });
  }

  #lost(message: string, cause?: unknown): void {
    if (this.#state === CLOSED) return;
    const err = new MuxError('MUX_ERR_TRANSPORT_CLOSED', message, cause === undefined ? undefined : { cause });
    this.#log.debug({ err: err.message, cause: cause instanceof Error ? cause.message : undefined }, 'mux transport lost');
    this.#teardown(true, err);
    if (!this.#transport.destroyed) this.#transport.destroy();
  }

  /**
   * The session is over. `kill` false: graceful (close() finished), channels are left to be read out; true:
   * every channel is destroyed, with `err` if given. `'close'` (with `err`) follows on the next tick, after
   * the channels' own 'close' events.
   */
  #teardown(kill: boolean, err?: Error): void {
    this.#state = CLOSED;
    this.#scheduler.stop();
    const slots = [...this.#slots];
    this.#slots.clear();
    this.#ids.clear();
    if (kill) for (const slot of slots) slot.kill(err);
    if (this.#paused) {
      // Keep draining what the peer still sends (into the void) instead of leaving it blocked on us.
      this.#paused = false;
      this.#transport.resume();
    }
    this.#log.debug({ err: err?.message }, 'mux session closed');
    process.nextTick(() => {
      if (err) this.emit('close', err);
      else this.emit('close');
      this.#resolveClosed();
    });
  }
}

function successor(id: bigint): bigint {
  return id === MAX_CLIENT_ID ? MIN_CLIENT_ID : id + 1n;
}

/**
 * The first id from `start` on (wrapping from int64 max to min) that is not `live`. Internal to mux/, exported
 * for its test: the wrap takes 2^64 opens to reach through the session. The caller guarantees a free id exists
 * (`maxChannels` is far below 2^64).
 */
export function nextFreeId(start: bigint, live: (id: bigint) => boolean): bigint {
  let id = start;
  while (live(id)) id = successor(id);
  return id;
}

function limit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
