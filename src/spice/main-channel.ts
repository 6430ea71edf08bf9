/**
 * The SPICE main channel, which is the session: it links first (connection_id 0), receives MAIN_INIT with the
 * session id every other channel must present, asks for the channel list (ATTACH_CHANNELS) and keeps that list
 * up to date as ports are hot-plugged. Everything else the server sends on main (mouse mode, agent, name/uuid,
 * multimedia time, migration) is ignored; PINGs, including the 250 KiB network test, are answered by the
 * protocol object, which the server needs to keep the session (§c.3).
 */
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../log.js';
import { ChannelConnection, DEFAULT_LINK_TIMEOUT_MS, type SpiceEndpoint } from './channel-connection.js';
import {
  SPICE_CHANNEL_MAIN,
  SPICE_CHANNEL_WEBDAV,
  SPICE_MSG_MAIN_CHANNELS_LIST,
  SPICE_MSG_MAIN_INIT,
  SPICE_MSGC_MAIN_ATTACH_CHANNELS,
} from './constants.js';
import { SpiceError } from './errors.js';
import { ChannelsListMessage, MainInitMessage, type ChannelId } from './messages.js';
import { SpicePortChannel } from './port-channel.js';

/**
 * A connected SPICE session (its main channel). Created by `connectSpice()`. Events: `'channels'` (list) each
 * time CHANNELS_LIST arrives, also later for hot-plugged ports, with the whole known list; `'close'` (err?)
 * once when the main channel is gone (then every port opened through it is closed too).
 */
export class SpiceSession extends EventEmitter {
  readonly #endpoint: SpiceEndpoint;
  readonly #conn: ChannelConnection;
  readonly #log: Logger;
  readonly #ports = new Set<SpicePortChannel>();
  #sessionId = 0;
  #channels: ChannelId[] = [];
  #ready: (() => void) | null = null;
  #closed = false;

  /** Use `connectSpice()`. */
  constructor(endpoint: SpiceEndpoint) {
    super();
    this.#endpoint = endpoint;
    this.#log = endpoint.log ?? silentLogger;
    this.#conn = new ChannelConnection(endpoint, {
      channelType: SPICE_CHANNEL_MAIN,
      channelId: 0,
      connectionId: 0,
      onClose: (err) => this.#onConnectionClose(err),
    });
    this.#conn.protocol.handle(SPICE_MSG_MAIN_INIT, (body) => this.#onInit(body));
    this.#conn.protocol.handle(SPICE_MSG_MAIN_CHANNELS_LIST, (body) => this.#onChannelsList(body));
  }

  /** The session id from MAIN_INIT (the connection_id of every other channel). */
  get sessionId(): number {
    return this.#sessionId;
  }

  /** Channels the server offers, from CHANNELS_LIST (hot-plugged ones added as they are announced). */
  get channels(): ReadonlyArray<ChannelId> {
    return this.#channels;
  }

  /** The main channel is linked over TLS. */
  get secure(): boolean {
    return this.#conn.secure;
  }

  /**
   * Link the main channel and wait for MAIN_INIT and the first CHANNELS_LIST (bounded by linkTimeoutMs).
   * Called by `connectSpice()`.
   */
  async connect(): Promise<void> {
    const timeout = this.#endpoint.linkTimeoutMs ?? DEFAULT_LINK_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => {
        reject(new SpiceError('SPICE_ERR_TIMEOUT', `the SPICE server did not send its channel list within ${timeout} ms`));
        void this.destroy();
      }, timeout);
      const onClose = (err?: Error) => {
        clearTimeout(timer);
        reject(err ?? new SpiceError('SPICE_ERR_CLOSED', 'the SPICE session was closed while connecting'));
      };
      this.once('close', onClose);
      this.#ready = () => {
        clearTimeout(timer);
        this.off('close', onClose);
        resolve();
      };
    });
    // The main-channel link failing rejects here; `ready` must not then reject unobserved, and its timer must
    // not keep the process alive for linkTimeoutMs after a refused link (wrong password).
    ready.catch(() => {});
    try {
      await this.#conn.connect();
    } catch (err) {
      clearTimeout(timer);
      throw err;
    }
    await ready;
  }

  /**
   * Link a port channel of this session (the webdav channel by default) and wait for its PORT_INIT.
   * `id` defaults to the first channel of that type in `channels`; a type the server does not list fails with
   * SPICE_ERR_CHANNEL_NOT_AVAILABLE.
   */
  async openPort(type: number = SPICE_CHANNEL_WEBDAV, id?: number): Promise<SpicePortChannel> {
    if (this.#closed) throw new SpiceError('SPICE_ERR_CLOSED', 'the SPICE session is closed');
    const entry = this.#channels.find((c) => c.type === type && (id === undefined || c.id === id));
    if (entry === undefined) {
      throw new SpiceError('SPICE_ERR_CHANNEL_NOT_AVAILABLE', `the SPICE server offers no channel ${type}${id === undefined ? '' : `:${id}`}`);
    }
    const port = new SpicePortChannel(this.#endpoint, { channelType: entry.type, channelId: entry.id, sessionId: this.#sessionId });
    this.#ports.add(port);
    port.once('close', () => this.#ports.delete(port));
    await port.connect();
    return port;
  }

  /** Close every port opened through the session, then the main channel. Idempotent. */
  async close(): Promise<void> {
    await Promise.all([...this.#ports].map((p) => p.close()));
    await this.#conn.close();
  }

  /** Abort the session and its ports now. Idempotent. */
  async destroy(err?: Error): Promise<void> {
    await Promise.all([...this.#ports].map((p) => p.destroy(err)));
    await this.#conn.destroy(err);
  }

  #onInit(body: Buffer): void {
    const init = MainInitMessage.decode(body);
    this.#sessionId = init.sessionId;
    this.#log.debug({ sessionId: init.sessionId, agent: init.agentConnected }, 'SPICE MAIN_INIT');
    this.#conn.send(SPICE_MSGC_MAIN_ATTACH_CHANNELS);
  }

  #onChannelsList(body: Buffer): void {
    const list = ChannelsListMessage.decode(body);
    // Later lists announce hot-plugged channels one at a time: merge, never drop what we know.
    for (const c of list) {
      if (!this.#channels.some((k) => k.type === c.type && k.id === c.id)) this.#channels.push(c);
    }
    this.#log.debug({ channels: list.map((c) => `${c.type}:${c.id}`).join(' ') }, 'SPICE CHANNELS_LIST');
    this.emit('channels', this.#channels);
    this.#ready?.();
    this.#ready = null;
  }

  #onConnectionClose(err: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    // The server tears every channel of the client down with main; do it here too so nothing lingers.
    for (const p of this.#ports) void p.destroy(err);
    this.emit('close', err);
  }
}
