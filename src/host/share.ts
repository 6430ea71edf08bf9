/**
 * `Share`: what `spicedav share DIR` runs. For every 'link' of its transport it starts a host-role mux session
 * over the link's stream and hands each mux channel (one guest TCP connection) to the WebDAV server as an
 * in-process HTTP connection. When the link ends, the session and every one of its channels are destroyed;
 * the next link starts a fresh session. Counters and 'state' events feed the status display.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../log.js';
import { MuxSession, type MuxChannel, type MuxSessionOptions } from '../../mux/index.js';
import type { Transport, TransportState } from './transport.js';

/** The part of DavServer a Share needs: serve one HTTP/1.1 connection over any Duplex, without timeouts. */
export interface ConnectionHandler {
  handleConnection(socket: Duplex): void;
}

/** Options of {@link Share}. */
export interface ShareOptions {
  /** The WebDAV server (`DavServer`) that serves the folder. */
  dav: ConnectionHandler;
  transport: Transport;
  /** Limits of each host-role mux session (role and log are set by the Share). */
  mux?: Omit<MuxSessionOptions, 'role' | 'log'>;
  log?: Logger;
}

/** Counters of a Share across all its links; they only grow, except `channels`/`linked` (current). */
export interface ShareStats {
  /** Links the transport made (guest attachments). */
  links: number;
  /** A link is live now. */
  linked: boolean;
  /** Guest connections open now. */
  channels: number;
  /** Guest connections opened in total. */
  channelsTotal: number;
  /** Mux payload bytes from the guest (requests, uploads). */
  bytesIn: number;
  /** Mux payload bytes to the guest (responses, downloads). */
  bytesOut: number;
}

/**
 * Serves a DavServer to the guest through a transport (see the file comment). Events: 'state'
 * (TransportState) forwarded from the transport; 'link' (session: MuxSession) when a guest attaches;
 * 'unlink' (err?) when that link ends; 'channel' (channel: MuxChannel) per guest connection.
 */
export class Share extends EventEmitter {
  readonly #dav: ConnectionHandler;
  readonly #transport: Transport;
  readonly #log: Logger;
  readonly #muxOptions: Omit<MuxSessionOptions, 'role' | 'log'>;
  readonly #sessions = new Set<MuxSession>();
  // Bytes of sessions that ended, so the totals survive reconnects.
  #pastBytesIn = 0;
  #pastBytesOut = 0;
  #links = 0;
  #channelsTotal = 0;
  #started = false;
  #closing: Promise<void> | null = null;

  constructor(options: ShareOptions) {
    super();
    this.#dav = options.dav;
    this.#transport = options.transport;
    this.#log = options.log ?? silentLogger;
    this.#muxOptions = options.mux ?? {};
  }

  /** The transport's latest state. */
  get state(): TransportState {
    return this.#transport.state;
  }

  /** Current counters (a fresh object each time). */
  get stats(): ShareStats {
    let bytesIn = this.#pastBytesIn;
    let bytesOut = this.#pastBytesOut;
    let channels = 0;
    for (const s of this.#sessions) {
      bytesIn += s.stats.bytesIn;
      bytesOut += s.stats.bytesOut;
      channels += s.channelCount;
    }
    return { links: this.#links, linked: this.#sessions.size > 0, channels, channelsTotal: this.#channelsTotal, bytesIn, bytesOut };
  }

  /** Start the transport and serve every link it makes. Once; later calls do nothing. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#transport.on('state', this.#onState);
    this.#transport.on('link', this.#onLink);
    this.#transport.start();
  }

  /** Stop the transport (the guest sees the host leave) and end every session. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#transport.off('link', this.#onLink);
      await Promise.all([...this.#sessions].map((s) => s.destroy()));
      await this.#transport.close();
      this.#transport.off('state', this.#onState);
    })();
    return this.#closing;
  }

  readonly #onState = (state: TransportState): void => {
    this.emit('state', state);
  };

  readonly #onLink = (stream: Duplex): void => {
    if (this.#closing) {
      stream.destroy();
      return;
    }
    this.#links++;
    const session = new MuxSession(stream, { ...this.#muxOptions, role: 'host', log: this.#log.child({ component: 'mux' }) });
    this.#sessions.add(session);
    this.#log.info({ link: this.#links }, 'guest attached');
    session.on('channel', (channel: MuxChannel) => {
      this.#channelsTotal++;
      this.emit('channel', channel);
      this.#dav.handleConnection(channel);
    });
    session.once('close', (err?: Error) => {
      this.#sessions.delete(session);
      this.#pastBytesIn += session.stats.bytesIn;
      this.#pastBytesOut += session.stats.bytesOut;
      this.#log.info({ link: this.#links, error: err?.message }, 'guest detached; its connections were closed');
      this.emit('unlink', err);
    });
    // The link's end is the session's end, whatever the mux makes of the stream's last bytes.
    stream.once('close', () => void session.destroy());
    this.emit('link', session);
  };
}
