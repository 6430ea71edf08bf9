/**
 * One SPICE channel connection as a transport-free protocol object: bytes from the server go in through
 * `push()`, bytes for the server come out through the injected `onWrite`, decoded messages go to a handler
 * table keyed by message type. It runs the link stage (link.ts), then reads mini (or full) data headers and
 * answers the messages every channel must handle — SET_ACK/ACK, PING→PONG, NOTIFY, DISCONNECTING — before
 * the channel-specific handlers the owner registers (main channel, port channel).
 * Model: mscdex/ssh2 `lib/protocol/Protocol.js` + `handlers.js`; flow in ../shared/docs/protocol.md §c.
 */
import { silentLogger, type Logger } from '../log.js';
import { ByteQueue } from './byte-queue.js';
import {
  SPICE_COMMON_CAP_MINI_HEADER,
  SPICE_LINK_ERR_OK,
  SPICE_MAGIC,
  SPICE_MSG_DISCONNECTING,
  SPICE_MSG_LIST,
  SPICE_MSG_MIGRATE,
  SPICE_MSG_MIGRATE_DATA,
  SPICE_MSG_NOTIFY,
  SPICE_MSG_PING,
  SPICE_MSG_SET_ACK,
  SPICE_MSG_WAIT_FOR_CHANNELS,
  SPICE_MSGC_ACK,
  SPICE_MSGC_ACK_SYNC,
  SPICE_MSGC_PONG,
  SPICE_NOTIFY_SEVERITY_ERROR,
  SPICE_NOTIFY_SEVERITY_WARN,
  SPICE_VERSION_MAJOR,
} from './constants.js';
import { SpiceError } from './errors.js';
import {
  CLIENT_COMMON_CAPS,
  LINK_HEADER_SIZE,
  LINK_REPLY_SIZE,
  MAX_LINK_SIZE,
  decodeLinkHeader,
  decodeLinkReply,
  encodeAuth,
  encodeLinkMess,
  hasCap,
  linkError,
} from './link.js';
import {
  AckSyncMessage,
  DisconnectingMessage,
  FullDataHeader,
  MiniDataHeader,
  NotifyMessage,
  PingMessage,
  PongMessage,
  SetAckMessage,
  type Disconnecting,
  type Notify,
} from './messages.js';

/** Where a channel connection is in its life. */
export enum ChannelState {
  /** Created or reset; `start()` sends the link message. */
  Idle,
  /** Link message sent; reading the server's SpiceLinkHeader. */
  LinkReplyHeader,
  /** Reading SpiceLinkReply and the server caps. */
  LinkReply,
  /** Ticket sent; reading the u32 link result. */
  LinkResult,
  /** Linked; reading a data header. */
  MessageHeader,
  /** Linked; reading the body of the message whose header was read. */
  MessageBody,
  /** Failed or closed; input is ignored. */
  Closed,
}

/** A handler for one message type; gets the whole body. Throwing a SpiceError fails the channel. */
export type MessageHandler = (body: Buffer) => void;

/** Default cap on one message body: above the 250 KiB network-test PING and 64 KiB SPICEVMC chunks. */
export const DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024;

/** Options of {@link SpiceChannelProtocol}. */
export interface ChannelProtocolOptions {
  channelType: number;
  channelId: number;
  /** 0 for main; the session id for the others (may also be set later through `connectionId`). */
  connectionId?: number;
  /** The SPICE password; undefined sends the empty ticket (`"\0"`). */
  password?: string;
  /** Channel capability words to advertise; none by default (webdav must never advertise LZ4). */
  channelCaps?: number[];
  /** Largest message body accepted; default {@link DEFAULT_MAX_MESSAGE_SIZE}. */
  maxMessageSize?: number;
  /** Sends bytes to the server, in order; returns false when the transport is full (like `write()`). */
  onWrite: (chunks: Buffer[]) => boolean;
  /** The channel failed (link refused, malformed input); the owner should drop the connection. */
  onError: (err: SpiceError) => void;
  /** The link stage completed; messages flow from now on. */
  onLinked?: () => void;
  /** The server sent NOTIFY (already logged). */
  onNotify?: (msg: Notify) => void;
  /** The server announced it is closing the channel. */
  onDisconnecting?: (msg: Disconnecting) => void;
  log?: Logger;
}

/** The transport-free SPICE channel protocol object (see the file comment). */
export class SpiceChannelProtocol {
  /** The SpiceLinkMess connection_id: set to the session id before starting a non-main channel. */
  connectionId: number;
  #state = ChannelState.Idle;
  readonly #opts: ChannelProtocolOptions;
  readonly #log: Logger;
  readonly #maxMessageSize: number;
  readonly #handlers = new Map<number, MessageHandler>();
  readonly #in = new ByteQueue();
  #secure = false;
  #need = LINK_HEADER_SIZE;
  #msgType = 0;
  #miniHeader = true;
  #serverCommonCaps: number[] = [];
  #serverChannelCaps: number[] = [];
  #outSerial = 0n;
  #ackWindow = 0;
  #ackCount = 0;

  constructor(options: ChannelProtocolOptions) {
    if (typeof options.onWrite !== 'function') throw new TypeError('SpiceChannelProtocol: missing onWrite');
    if (typeof options.onError !== 'function') throw new TypeError('SpiceChannelProtocol: missing onError');
    this.#opts = options;
    this.#log = options.log ?? silentLogger;
    this.#maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.connectionId = options.connectionId ?? 0;
    this.#handlers.set(SPICE_MSG_SET_ACK, (b) => this.#onSetAck(b));
    this.#handlers.set(SPICE_MSG_PING, (b) => this.#onPing(b));
    this.#handlers.set(SPICE_MSG_NOTIFY, (b) => this.#onNotify(b));
    this.#handlers.set(SPICE_MSG_DISCONNECTING, (b) => this.#onDisconnecting(b));
    this.#handlers.set(SPICE_MSG_MIGRATE, () => this.#log.warn({}, 'SPICE live migration is not supported; the connection will be re-established'));
    // Migration data, display sync and sub-message lists carry nothing a webdav client acts on.
    for (const t of [SPICE_MSG_MIGRATE_DATA, SPICE_MSG_WAIT_FOR_CHANNELS, SPICE_MSG_LIST]) this.#handlers.set(t, () => {});
  }

  /** Current state. */
  get state(): ChannelState {
    return this.#state;
  }

  /** The server's common capability words (after the link reply). */
  get serverCommonCaps(): readonly number[] {
    return this.#serverCommonCaps;
  }

  /** The server's channel capability words (after the link reply). */
  get serverChannelCaps(): readonly number[] {
    return this.#serverChannelCaps;
  }

  /**
   * Register the handler of a channel-specific message type (>= 101). The common types have built-in
   * handlers that cannot be replaced, so every channel answers PING and SET_ACK.
   */
  handle(type: number, handler: MessageHandler): void {
    if (type < 100) throw new RangeError(`message type ${type} is handled by every channel`);
    this.#handlers.set(type, handler);
  }

  /** Start (or restart, after a reconnect) the link stage: clears all state and sends SpiceLinkMess. */
  start(secure: boolean): void {
    this.#in.clear();
    this.#secure = secure;
    this.#state = ChannelState.LinkReplyHeader;
    this.#need = LINK_HEADER_SIZE;
    this.#outSerial = 0n;
    this.#ackWindow = 0;
    this.#ackCount = 0;
    this.#opts.onWrite([
      encodeLinkMess({
        connectionId: this.connectionId,
        channelType: this.#opts.channelType,
        channelId: this.#opts.channelId,
        commonCaps: [CLIENT_COMMON_CAPS],
        channelCaps: this.#opts.channelCaps ?? [],
      }),
    ]);
  }

  /** Feed bytes received from the server. Handlers run synchronously, in order. */
  push(chunk: Buffer): void {
    if (this.#state === ChannelState.Closed || this.#state === ChannelState.Idle) return;
    this.#in.push(chunk);
    try {
      while (this.#in.length >= this.#need && this.#running()) this.#step(this.#in.consume(this.#need));
    } catch (err) {
      this.#fail(err instanceof SpiceError ? err : new SpiceError('SPICE_ERR_PROTOCOL', `SPICE message handling failed: ${String(err)}`, { cause: err }));
    }
  }

  /** Send one message; returns false when the transport is full. Only valid once linked. */
  send(type: number, body: Buffer | Buffer[] = []): boolean {
    if (this.#state !== ChannelState.MessageHeader && this.#state !== ChannelState.MessageBody) {
      throw new SpiceError('SPICE_ERR_CLOSED', 'the SPICE channel is not linked');
    }
    const parts = Buffer.isBuffer(body) ? [body] : body;
    let size = 0;
    for (const p of parts) size += p.length;
    const header = this.#miniHeader
      ? MiniDataHeader.encode({ type, size })
      : FullDataHeader.encode({ serial: ++this.#outSerial, type, size, subList: 0 });
    return this.#opts.onWrite([header, ...parts]);
  }

  /** Stop: further input is ignored. Idempotent. */
  close(): void {
    this.#state = ChannelState.Closed;
    this.#in.clear();
  }

  #step(buf: Buffer): void {
    switch (this.#state) {
      case ChannelState.LinkReplyHeader: {
        const h = decodeLinkHeader(buf);
        if (h.magic !== SPICE_MAGIC) throw new SpiceError('SPICE_ERR_PROTOCOL', 'the peer is not a SPICE server (bad link magic): check the host and port');
        if (h.majorVersion !== SPICE_VERSION_MAJOR) throw linkError(4, this.#linkContext());
        if (h.size < 4 || h.size > MAX_LINK_SIZE) throw new SpiceError('SPICE_ERR_PROTOCOL', `bad SpiceLinkReply size ${h.size}`);
        this.#state = ChannelState.LinkReply;
        this.#need = h.size;
        return;
      }
      case ChannelState.LinkReply: {
        const reply = decodeLinkReply(buf);
        if (reply.error !== SPICE_LINK_ERR_OK) throw linkError(reply.error, this.#linkContext());
        if (buf.length < LINK_REPLY_SIZE) throw new SpiceError('SPICE_ERR_PROTOCOL', 'truncated SpiceLinkReply');
        this.#serverCommonCaps = reply.commonCaps;
        this.#serverChannelCaps = reply.channelCaps;
        this.#state = ChannelState.LinkResult;
        this.#need = 4;
        this.#opts.onWrite(encodeAuth(reply, this.#opts.password));
        return;
      }
      case ChannelState.LinkResult: {
        const result = buf.readUInt32LE(0);
        if (result !== SPICE_LINK_ERR_OK) throw linkError(result, this.#linkContext());
        // We always offer the mini header; it is used iff the server offers it too (spice-gtk use_mini_header).
        this.#miniHeader = hasCap(this.#serverCommonCaps, SPICE_COMMON_CAP_MINI_HEADER);
        this.#expectHeader();
        this.#log.debug({ channel: this.#opts.channelType, id: this.#opts.channelId, secure: this.#secure }, 'SPICE channel linked');
        this.#opts.onLinked?.();
        return;
      }
      case ChannelState.MessageHeader: {
        const h = this.#miniHeader ? MiniDataHeader.decode(buf) : FullDataHeader.decode(buf);
        if (h.size > this.#maxMessageSize) {
          throw new SpiceError('SPICE_ERR_MESSAGE_TOO_LARGE', `SPICE message type ${h.type} of ${h.size} bytes exceeds maxMessageSize ${this.#maxMessageSize}`);
        }
        this.#msgType = h.type;
        this.#state = ChannelState.MessageBody;
        this.#need = h.size; // 0 is fine: push() then consumes an empty body
        return;
      }
      case ChannelState.MessageBody: {
        this.#expectHeader();
        this.#dispatch(this.#msgType, buf);
        return;
      }
      default:
        return;
    }
  }

  // A method, not an inline test, so TypeScript does not narrow #state across handler calls that change it.
  #running(): boolean {
    return this.#state !== ChannelState.Closed;
  }

  #expectHeader(): void {
    this.#state = ChannelState.MessageHeader;
    this.#need = this.#miniHeader ? MiniDataHeader.size : FullDataHeader.size;
  }

  #dispatch(type: number, body: Buffer): void {
    // The ACK window counts every message once SET_ACK asked for it (spice-gtk spice_channel_recv_msg).
    if (this.#ackWindow > 0 && --this.#ackCount === 0) {
      this.#ackCount = this.#ackWindow;
      this.send(SPICE_MSGC_ACK);
    }
    const handler = this.#handlers.get(type);
    if (handler) handler(body);
    else this.#log.debug({ channel: this.#opts.channelType, type, size: body.length }, 'ignored SPICE message');
  }

  #onSetAck(body: Buffer): void {
    const m = SetAckMessage.decode(body);
    this.#ackWindow = m.window;
    this.#ackCount = m.window;
    this.send(SPICE_MSGC_ACK_SYNC, AckSyncMessage.encode({ generation: m.generation }));
  }

  #onPing(body: Buffer): void {
    // The payload (up to 250 KiB during the main channel's network test) only measures bandwidth: drop it.
    const m = PingMessage.decode(body);
    this.send(SPICE_MSGC_PONG, PongMessage.encode({ id: m.id, timestamp: m.timestamp }));
  }

  #onNotify(body: Buffer): void {
    const m = NotifyMessage.decode(body);
    const fields = { channel: this.#opts.channelType, what: m.what };
    if (m.severity === SPICE_NOTIFY_SEVERITY_ERROR) this.#log.error(fields, `SPICE server: ${m.message}`);
    else if (m.severity === SPICE_NOTIFY_SEVERITY_WARN) this.#log.warn(fields, `SPICE server: ${m.message}`);
    else this.#log.info(fields, `SPICE server: ${m.message}`);
    this.#opts.onNotify?.(m);
  }

  #onDisconnecting(body: Buffer): void {
    const m = DisconnectingMessage.decode(body);
    this.#log.debug({ channel: this.#opts.channelType, reason: m.reason }, 'SPICE server is disconnecting the channel');
    this.#opts.onDisconnecting?.(m);
  }

  #linkContext() {
    return { channelType: this.#opts.channelType, channelId: this.#opts.channelId, password: Boolean(this.#opts.password), secure: this.#secure };
  }

  #fail(err: SpiceError): void {
    if (this.#state === ChannelState.Closed) return;
    this.close();
    this.#opts.onError(err);
  }
}
