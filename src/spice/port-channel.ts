/**
 * A SPICE port channel (SPICE_CHANNEL_PORT, or SPICE_CHANNEL_WEBDAV which is a port channel with a fixed name):
 * PORT_INIT tells the port's name and whether the guest has it open, PORT_EVENT reports OPENED / CLOSED /
 * BREAK, and SPICEVMC_DATA carries the port's bytes both ways. The bytes are exposed as one Duplex, `stream`,
 * with backpressure both ways: writes complete when the socket takes them, and the socket is not read while
 * the stream's consumer is full. LZ4 is never advertised, so the server never compresses (§c.5).
 */
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../log.js';
import { ChannelConnection, DEFAULT_LINK_TIMEOUT_MS, type SpiceEndpoint } from './channel-connection.js';
import {
  SPICE_MSG_PORT_EVENT,
  SPICE_MSG_PORT_INIT,
  SPICE_MSG_SPICEVMC_COMPRESSED_DATA,
  SPICE_MSG_SPICEVMC_DATA,
  SPICE_MSGC_SPICEVMC_DATA,
  SPICE_PORT_EVENT_BREAK,
  SPICE_PORT_EVENT_CLOSED,
  SPICE_PORT_EVENT_OPENED,
} from './constants.js';
import { SpiceError } from './errors.js';
import { PortEventMessage, PortInitMessage } from './messages.js';

/**
 * Largest SPICEVMC_DATA message the stream sends. One mux frame (10 + 65535 bytes) always fits, so each frame
 * written on its own is one message as spice-gtk sends it; frames that queued up while the socket was full
 * share a message, which spends fewer of the server's 128 per-message tokens (§d.3).
 */
export const DEFAULT_MAX_DATA_MESSAGE = 256 * 1024;

/** Buffering of the port stream in each direction. */
export const PORT_STREAM_HIGH_WATER_MARK = 256 * 1024;

/** Why the port stopped being open: the guest closed it, or QEMU sent a break. */
export type PortCloseReason = 'closed' | 'break';

/** Options of {@link SpicePortChannel}. */
export interface SpicePortChannelOptions {
  /** SPICE_CHANNEL_WEBDAV or SPICE_CHANNEL_PORT. */
  channelType: number;
  channelId: number;
  /** The session id from MAIN_INIT. */
  sessionId: number;
  /** Largest SPICEVMC_DATA message sent; default {@link DEFAULT_MAX_DATA_MESSAGE}. */
  maxDataMessage?: number;
}

/**
 * One linked port channel. Events: `'opened'` and `'closed'` (reason: `'closed' | 'break'`) when the guest
 * opens or closes the port after the channel was returned (check `opened` for the state at that time), and
 * `'close'` (err?) once when the channel connection is gone; `stream` ends then.
 */
export class SpicePortChannel extends EventEmitter {
  /** The port's name from PORT_INIT (`org.spice-space.webdav.0` for the webdav channel). */
  name = '';
  /** The guest has the port open: data can flow. */
  opened = false;
  /**
   * SPICEVMC_DATA payloads in; writes become SPICEVMC_DATA messages. Its readable side ends when the channel
   * closes, and what is written after that is dropped.
   */
  readonly stream: Duplex;
  readonly channelType: number;
  readonly channelId: number;
  readonly #conn: ChannelConnection;
  readonly #log: Logger;
  readonly #linkTimeout: number;
  #initialised = false;
  #onInit: (() => void) | null = null;
  #closed = false;

  /** Use `SpiceSession.openPort()`; constructing directly is for tests and custom sessions. */
  constructor(endpoint: SpiceEndpoint, options: SpicePortChannelOptions) {
    super();
    this.channelType = options.channelType;
    this.channelId = options.channelId;
    this.#log = (endpoint.log ?? silentLogger).child({ channel: `${options.channelType}:${options.channelId}` });
    this.#linkTimeout = endpoint.linkTimeoutMs ?? DEFAULT_LINK_TIMEOUT_MS;
    this.#conn = new ChannelConnection(endpoint, {
      channelType: options.channelType,
      channelId: options.channelId,
      connectionId: options.sessionId,
      onClose: (err) => this.#onConnectionClose(err),
    });
    this.stream = new PortStream(this.#conn, options.maxDataMessage ?? DEFAULT_MAX_DATA_MESSAGE);
    const p = this.#conn.protocol;
    p.handle(SPICE_MSG_PORT_INIT, (body) => this.#onPortInit(body));
    p.handle(SPICE_MSG_PORT_EVENT, (body) => this.#onPortEvent(body));
    p.handle(SPICE_MSG_SPICEVMC_DATA, (body) => this.#onData(body));
    p.handle(SPICE_MSG_SPICEVMC_COMPRESSED_DATA, (body) => {
      // Type 0 (NONE) is plain data; anything else is LZ4, which we never advertised.
      if (body[0] !== 0) throw new SpiceError('SPICE_ERR_PROTOCOL', 'the SPICE server sent LZ4-compressed port data although the client did not advertise it');
      this.#onData(body.subarray(1));
    });
  }

  /** The channel is linked over TLS. */
  get secure(): boolean {
    return this.#conn.secure;
  }

  /** Link the channel and wait for PORT_INIT (both bounded by the endpoint's linkTimeoutMs). */
  async connect(): Promise<void> {
    await this.#conn.connect();
    if (this.#initialised) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onInit = null;
        reject(new SpiceError('SPICE_ERR_TIMEOUT', `no PORT_INIT on SPICE channel ${this.channelType}:${this.channelId} within ${this.#linkTimeout} ms`));
        void this.destroy();
      }, this.#linkTimeout);
      const onClose = (err?: Error) => {
        clearTimeout(timer);
        this.#onInit = null;
        reject(
          err ??
            new SpiceError('SPICE_ERR_CLOSED', `SPICE channel ${this.channelType}:${this.channelId} was closed before PORT_INIT`),
        );
      };
      this.once('close', onClose);
      this.#onInit = () => {
        clearTimeout(timer);
        this.off('close', onClose);
        resolve();
      };
    });
  }

  /** Graceful close of the channel connection (the guest sees the host leave). Idempotent. */
  close(): Promise<void> {
    return this.#conn.close();
  }

  /** Abort the channel connection now. Idempotent. */
  destroy(err?: Error): Promise<void> {
    return this.#conn.destroy(err);
  }

  #onPortInit(body: Buffer): void {
    const m = PortInitMessage.decode(body);
    this.name = m.name;
    this.opened = m.opened;
    this.#log.debug({ name: m.name, opened: m.opened }, 'PORT_INIT');
    if (!this.#initialised) {
      this.#initialised = true;
      this.#onInit?.();
      this.#onInit = null;
      return;
    }
    this.#transition(m.opened, 'closed');
  }

  #onPortEvent(body: Buffer): void {
    const { event } = PortEventMessage.decode(body);
    this.#log.debug({ event }, 'PORT_EVENT');
    if (event === SPICE_PORT_EVENT_OPENED) this.#transition(true, 'closed');
    else if (event === SPICE_PORT_EVENT_CLOSED) this.#transition(false, 'closed');
    // spice-gtk drops every mux client on BREAK too (any event other than OPENED), and so do we.
    else if (event === SPICE_PORT_EVENT_BREAK) this.#transition(false, 'break');
  }

  #transition(opened: boolean, reason: PortCloseReason): void {
    if (opened === this.opened) return;
    this.opened = opened;
    if (opened) this.emit('opened');
    else this.emit('closed', reason);
  }

  #onData(payload: Buffer): void {
    if (payload.length === 0) return;
    // Pause the socket when the consumer is full: the only flow control a port channel has (§d.3).
    if (!this.stream.push(payload)) this.#conn.pause();
  }

  #onConnectionClose(err: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.opened = false;
    // End, not destroy(err): the reason goes out with 'close' below, so a stream consumer without an 'error'
    // listener is not crashed by a VM going away. Writes from now on are dropped (PortStream._writev).
    this.stream.push(null);
    this.emit('close', err);
  }
}

/** The port's byte stream: reads resume the socket, writes become SPICEVMC_DATA messages (see the file comment). */
class PortStream extends Duplex {
  readonly #conn: ChannelConnection;
  readonly #maxMessage: number;

  constructor(conn: ChannelConnection, maxMessage: number) {
    super({ highWaterMark: PORT_STREAM_HIGH_WATER_MARK, allowHalfOpen: false });
    this.#conn = conn;
    this.#maxMessage = maxMessage;
  }

  override _read(): void {
    this.#conn.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }

  // A mux frame is written as [header, payload] under cork(): both arrive here together and leave as one message.
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    if (this.#conn.ended) return cb();
    let ok = true;
    try {
      let batch: Buffer[] = [];
      let size = 0;
      for (const { chunk } of chunks) {
        for (let off = 0; off < chunk.length; ) {
          const take = Math.min(chunk.length - off, this.#maxMessage - size);
          batch.push(off === 0 && take === chunk.length ? chunk : chunk.subarray(off, off + take));
          size += take;
          off += take;
          if (size === this.#maxMessage) {
            ok = this.#conn.send(SPICE_MSGC_SPICEVMC_DATA, batch);
            batch = [];
            size = 0;
          }
        }
      }
      if (size > 0) ok = this.#conn.send(SPICE_MSGC_SPICEVMC_DATA, batch);
    } catch (err) {
      return cb(err as Error);
    }
    if (ok) cb();
    else this.#conn.onceWritable(() => cb());
  }
}
