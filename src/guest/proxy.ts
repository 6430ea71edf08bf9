import { EventEmitter } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { MuxSession } from '../../mux/index.js';
import { portCopiesWrites, pumpUpload } from './upload-pump.js';
import { HttpExchangeTracker } from './http-framing.js';
import type { MuxChannel, MuxSessionOptions } from '../../mux/index.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { hasCode } from '../errors.js';
import { GuestError, GuestErrorCode } from './errors.js';
import type { PortDevice, PortDeviceOptions } from './port-device.js';
import { portDeviceFromSpec } from './device-spec.js';
import type { MdnsAdvertiser } from './mdns.js';
import { AvahiAdvertiser } from './mdns.js';

import { DEFAULT_GUEST_HOSTS, DEFAULT_GUEST_PORT, DEFAULT_MAX_WAITING_CONNECTIONS, DEFAULT_WAIT_FOR_HOST } from './defaults.js';

export { DEFAULT_GUEST_HOSTS, DEFAULT_GUEST_PORT, DEFAULT_MAX_WAITING_CONNECTIONS, DEFAULT_WAIT_FOR_HOST };

/** Options of {@link GuestProxy}. */
export interface GuestProxyOptions {
  /** The port: a {@link PortDevice}, or a `--device` string (see `portDeviceFromSpec`). */
  device: PortDevice | string;
  /** TCP port on loopback (default {@link DEFAULT_GUEST_PORT}); 0 picks a free one (the same on every host). */
  port?: number;
  /**
   * Loopback addresses to listen on (default {@link DEFAULT_GUEST_HOSTS}). The first must bind; an IPv6 address
   * that the system does not have is skipped with a warning. Only loopback addresses are accepted.
   */
  hosts?: readonly string[];
  /**
   * Milliseconds a connection that arrives while no SPICE client is attached waits for one (default
   * {@link DEFAULT_WAIT_FOR_HOST}). Its bytes stay unread in the kernel meanwhile; when a host attaches it is
   * served as if it had just connected. When the time is up it gets an HTTP 503 and is closed. 0: at once.
   */
  waitForHost?: number;
  /** Connections allowed to wait at the same time (default {@link DEFAULT_MAX_WAITING_CONNECTIONS}); more get 503. */
  maxWaitingConnections?: number;
  /**
   * mDNS advertisement of `_webdav._tcp` "Spice client folder" on loopback while a host is attached: true,
   * false, `'auto'` (default: when avahi-daemon answers on the system bus), or an advertiser of your own.
   */
  mdns?: boolean | 'auto' | MdnsAdvertiser;
  /** Timing of a device given as a string (poll intervals); ignored for a {@link PortDevice} object. */
  deviceOptions?: Omit<PortDeviceOptions, 'log'>;
  /** Limits passed to the guest-role mux session (buffer bounds, overflow policy, channel count). */
  mux?: Omit<MuxSessionOptions, 'role' | 'log'>;
  /** Milliseconds close() lets the mux flush its close frames before cutting (default 2000). */
  closeTimeout?: number;
  /**
   * Read uploads straight into frame buffers (default true; see upload-pump.ts). false: the plain pipe() path,
   * which is also what runs when this Node does not allow the former, and over a port whose writes do not copy
   * (a Duplex of your own, the in-memory transport: see `portCopiesWrites`).
   */
  zeroCopyUploads?: boolean;
  log?: Logger;
}

/** The proxy's states: no host yet (or lost), host attached and serving, shut down. */
export type GuestProxyState = 'waiting' | 'attached' | 'closed';

/** Payload of the `'state'` event. */
export interface GuestProxyStateEvent {
  state: GuestProxyState;
  /** When the state was entered. */
  since: Date;
  /** Set with `'closed'` when the proxy stopped because of a fatal error (unusable device). */
  error?: Error;
}

/** Payload of the `'connection'` event: a local client got a mux channel. */
export interface GuestConnectionEvent {
  id: bigint;
  remote: string;
}

/** Payload of the `'disconnect'` event: a local client's connection is over. */
export interface GuestDisconnectEvent {
  id: bigint;
  remote: string;
  /** Bytes the client sent to the host / received from it on this connection. */
  bytesToHost: number;
  bytesFromHost: number;
  /** Why, when it was not the client closing: e.g. `GUEST_ERR_HOST_LOST`, `MUX_ERR_CHANNEL_OVERFLOW`. */
  reason?: string;
}

/** Counters for a status line; read `proxy.stats` any time. */
export interface GuestProxyStats {
  state: GuestProxyState;
  /** Local clients connected to the host now. */
  connections: number;
  /** Local clients waiting for a host now. */
  waiting: number;
  /** Local clients served since start. */
  connectionsTotal: number;
  /** Local clients that got the 503 (no host in time, or too many waiting). */
  connectionsRefused: number;
  /** Size-0 frames from the host (spice-webdavd compatibility: between responses they leave the connection open). */
  hostCloses: number;
  /**
   * Those that came in the middle of a response, or ended one delimited by the close: the local connection was
   * closed with them, since keeping it would leave its client waiting for bytes that will never come.
   */
  hostClosesMidResponse: number;
  /** Times a host attached / was lost. */
  hostAttaches: number;
  hostLosses: number;
  /** Payload bytes sent to / received from the host, over all sessions. */
  bytesToHost: number;
  bytesFromHost: number;
  /** Milliseconds from the last host loss to the next attach (undefined until a host came back once). */
  lastResumeMs: number | undefined;
}

/** The proxy's events. */
export interface GuestProxyEvents {
  state: [event: GuestProxyStateEvent];
  connection: [event: GuestConnectionEvent];
  disconnect: [event: GuestDisconnectEvent];
}

// What a local client gets when no host came in time: plain HTTP, since every client of this port speaks it,
// and a bare close reads as "empty reply" without saying why.
const NO_HOST_BODY = 'No SPICE client is attached to this VM, so the shared folder is not available. Connect a viewer that shares a folder (remote-viewer, spicy, spicedav share) and retry.\n';
const NO_HOST_RESPONSE =
  'HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\nConnection: close\r\n' +
  `Content-Length: ${Buffer.byteLength(NO_HOST_BODY)}\r\n\r\n${NO_HOST_BODY}`;
// How long a refused client may take to read the 503 before it is cut.
const REFUSE_LINGER = 2000;
/** Bytes a local socket may hold unsent before its channel pauses (see #forwardDownload). */
const LOCAL_WRITE_BOUND = 512 * 1024;

/**
 * `spicedav guest`: the drop-in for phodav's spice-webdavd. It listens on loopback TCP (IPv4 and IPv6), and
 * carries each local connection as one mux channel over the SPICE webdav port to the host's WebDAV server.
 *
 * Lifecycle: `start()` binds the listeners (and fails if it cannot), then waits for a host on the port. While a
 * host is attached each accepted connection gets `session.open()` (a fresh id, never a live one) and is piped
 * both ways with backpressure; the mux keeps a stalled client from blocking the others. A size-0 frame from the
 * host between responses leaves the TCP connection open (`'hostclose'`; the next bytes start a new connection on
 * the host, as with spice-webdavd); one in the middle of a response closes it, so that the client sees the cut,
 * and so does one after a response that announced the close (http-framing.ts). When the host leaves, every local connection is closed, the listeners stay bound, mDNS is
 * withdrawn, and the port is watched again until the next host. Connections arriving without a host wait
 * `waitForHost` ms, then get a 503 (see {@link GuestProxyOptions.waitForHost}).
 *
 * Events: `'state'` ({@link GuestProxyStateEvent}), `'connection'`, `'disconnect'`. `closed` resolves when the
 * proxy stops: with undefined after close(), with the error when the device turned out unusable.
 */
export class GuestProxy extends EventEmitter<GuestProxyEvents> {
  /** Resolves once the proxy has stopped: undefined after close(), the fatal error otherwise. Never rejects. */
  readonly closed: Promise<Error | undefined>;
  readonly #options: GuestProxyOptions;
  readonly #log: Logger;
  readonly #servers: Server[] = [];
  readonly #clients = new Map<Socket, MuxChannel>();
  readonly #waiting = new Map<Socket, NodeJS.Timeout>();
  readonly #abort = new AbortController();
  readonly #stats: Omit<GuestProxyStats, 'state' | 'connections' | 'waiting' | 'bytesToHost' | 'bytesFromHost'> = {
    connectionsTotal: 0,
    connectionsRefused: 0,
    hostCloses: 0,
    hostClosesMidResponse: 0,
    hostAttaches: 0,
    hostLosses: 0,
    lastResumeMs: undefined,
  };
  #bytesToHostDone = 0;
  #bytesFromHostDone = 0;
  #state: GuestProxyState = 'waiting';
  #device: PortDevice | undefined;
  #session: MuxSession | undefined;
  /** Whether the current session's uploads may use the pump (upload-pump.ts): the option, and a port that copies. */
  #pumpUploads = false;
  #advertiser: MdnsAdvertiser | undefined;
  #port = 0;
  #started = false;
  #closing: Promise<void> | undefined;
  #lostAt: number | undefined;
  #running: Promise<void> | undefined;
  #resolveClosed!: (err: Error | undefined) => void;

  constructor(options: GuestProxyOptions) {
    super();
    this.#options = options;
    this.#log = (options.log ?? silentLogger).child({ component: 'guest' });
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    for (const host of options.hosts ?? DEFAULT_GUEST_HOSTS) {
      if (!isLoopback(host)) {
        throw new GuestError(GuestErrorCode.LISTEN, `${host} is not a loopback address: the guest proxy serves the VM itself only (127.0.0.1, ::1)`);
      }
    }
  }

  /** The current state. */
  get state(): GuestProxyState {
    return this.#state;
  }

  /** The addresses actually bound (after start()). */
  get addresses(): AddressInfo[] {
    return this.#servers.map((s) => s.address() as AddressInfo);
  }

  /** Live counters for a status line. */
  get stats(): GuestProxyStats {
    const mux = this.#session?.stats;
    return {
      ...this.#stats,
      state: this.#state,
      connections: this.#clients.size,
      waiting: this.#waiting.size,
      bytesToHost: this.#bytesToHostDone + (mux?.bytesOut ?? 0),
      bytesFromHost: this.#bytesFromHostDone + (mux?.bytesIn ?? 0),
    };
  }

  /**
   * Binds the loopback listeners, then starts waiting for a host in the background. Rejects with
   * `GUEST_ERR_ADDRESS_IN_USE` / `GUEST_ERR_LISTEN` (nothing stays bound), `GUEST_ERR_BAD_DEVICE`, or
   * `GUEST_ERR_CLOSED` after close().
   */
  async start(): Promise<void> {
    if (this.#closing) throw new GuestError(GuestErrorCode.CLOSED, 'the guest proxy was closed; make a new one');
    if (this.#started) return;
    this.#started = true;
    const { device } = this.#options;
    try {
      this.#device =
        typeof device === 'string' ? await portDeviceFromSpec(device, { ...this.#options.deviceOptions, log: this.#log }) : device;
      await this.#listen();
    } catch (err) {
      await this.#closeServers();
      throw err;
    }
    this.#advertiser = await this.#makeAdvertiser();
    this.#setState('waiting');
    this.#running = this.#run();
  }

  /**
   * Stops: no new connections, waiting ones are dropped, the mux session is closed (each channel's size-0 frame
   * goes out, bounded by `closeTimeout`), every local connection is closed, mDNS withdrawn, the port released.
   * Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown(undefined);
    return this.#closing;
  }

  // --- listening ---------------------------------------------------------------------------------------------

  async #listen(): Promise<void> {
    const hosts = this.#options.hosts ?? DEFAULT_GUEST_HOSTS;
    let port = this.#options.port ?? DEFAULT_GUEST_PORT;
    for (const [i, host] of hosts.entries()) {
      const server = createServer({ allowHalfOpen: false, pauseOnConnect: true }, (s) => this.#onConnection(s));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
            server.removeListener('error', reject);
            resolve();
          });
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (i > 0 && host.includes(':') && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) {
          this.#log.warn({ host, code }, 'IPv6 loopback is not available; listening on IPv4 only (Windows clients may need 127.0.0.1)');
          continue;
        }
        if (code === 'EADDRINUSE') {
          throw new GuestError(
            GuestErrorCode.ADDRESS_IN_USE,
            `${host} port ${port} is in use: stop spice-webdavd (systemctl stop spice-webdavd) or the other spicedav guest, or pick --port`,
            { cause: err },
          );
        }
        throw new GuestError(GuestErrorCode.LISTEN, `cannot listen on ${host} port ${port}: ${(err as Error).message}`, { cause: err });
      }
      server.on('error', (err) => this.#log.error({ err: err.message }, 'listener error'));
      this.#servers.push(server);
      // Port 0: every family gets the port the first one was given.
      port = (server.address() as AddressInfo).port;
    }
    this.#port = port;
    this.#log.info({ addresses: this.addresses.map((a) => `${a.address}:${a.port}`) }, 'listening');
  }

  async #closeServers(): Promise<void> {
    const servers = this.#servers.splice(0);
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  // --- host sessions -----------------------------------------------------------------------------------------

  /** One host session after another until close() or a fatal device error. */
  async #run(): Promise<void> {
    const device = this.#device as PortDevice;
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      let transport: Duplex;
      try {
        transport = await device.open(signal);
      } catch (err) {
        if (signal.aborted) return;
        this.#log.error({ err: (err as Error).message }, 'the port device is unusable; stopping');
        this.#closing ??= this.#shutdown(err as Error);
        return;
      }
      if (signal.aborted) {
        transport.destroy();
        return;
      }
      await this.#serve(transport);
    }
  }

  /** Runs one host session over `transport` until the host leaves (or close()). */
  async #serve(transport: Duplex): Promise<void> {
    const session = new MuxSession(transport, { ...this.#options.mux, role: 'guest', log: this.#log });
    this.#session = session;
    this.#pumpUploads = this.#options.zeroCopyUploads !== false && portCopiesWrites(transport);
    const ended = new Promise<Error | undefined>((resolve) => session.once('close', resolve));
    this.#stats.hostAttaches++;
    if (this.#lostAt !== undefined) this.#stats.lastResumeMs = Date.now() - this.#lostAt;
    this.#setState('attached');
    this.#log.info({ resumeMs: this.#lostAt === undefined ? undefined : this.#stats.lastResumeMs }, 'SPICE client attached; serving');
    this.#advertiser?.publish(this.#port).catch((err: Error) => this.#log.warn({ err: err.message }, 'mDNS advertisement failed'));
    for (const socket of [...this.#waiting.keys()]) this.#bridge(socket);

    const err = await ended;
    this.#session = undefined;
    this.#bytesToHostDone += session.stats.bytesOut;
    this.#bytesFromHostDone += session.stats.bytesIn;
    transport.destroy();
    if (this.#abort.signal.aborted) return;
    this.#stats.hostLosses++;
    this.#lostAt = Date.now();
    this.#log.info({ why: err?.message }, 'SPICE client left; local connections closed, waiting for the next one');
    await this.#advertiser?.withdraw().catch((e: Error) => this.#log.warn({ err: e.message }, 'mDNS withdrawal failed'));
    this.#setState('waiting');
  }

  // --- local connections -------------------------------------------------------------------------------------

  #onConnection(socket: Socket): void {
    socket.on('error', (err) => this.#log.debug({ err: err.message }, 'local client error'));
    if (this.#closing) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    if (this.#session) this.#bridge(socket);
    else this.#wait(socket);
  }

  /** No host right now: hold the connection, unread (pauseOnConnect), until one attaches or `waitForHost` ends. */
  #wait(socket: Socket): void {
    const wait = this.#options.waitForHost ?? DEFAULT_WAIT_FOR_HOST;
    if (wait <= 0 || this.#waiting.size >= (this.#options.maxWaitingConnections ?? DEFAULT_MAX_WAITING_CONNECTIONS)) {
      this.#refuse(socket);
      return;
    }
    const timer = setTimeout(() => {
      this.#waiting.delete(socket);
      this.#refuse(socket);
    }, wait);
    this.#waiting.set(socket, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      this.#waiting.delete(socket);
    });
  }

  /** No host: answer 503 and close, reading (and dropping) the request so the close is a FIN, not a reset. */
  #refuse(socket: Socket): void {
    this.#stats.connectionsRefused++;
    this.#log.info({ remote: remoteOf(socket) }, 'no SPICE client attached; local connection refused with 503');
    socket.resume();
    socket.end(NO_HOST_RESPONSE);
    const cut = setTimeout(() => socket.destroy(), REFUSE_LINGER);
    socket.once('close', () => clearTimeout(cut));
  }

  /** Joins a local connection to a fresh mux channel, both ways with backpressure. */
  #bridge(socket: Socket): void {
    const timer = this.#waiting.get(socket);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.#waiting.delete(socket);
    }
    const session = this.#session as MuxSession;
    let channel: MuxChannel;
    try {
      channel = session.open();
    } catch (err) {
      // The host just left and the session is winding down: this client waits for the next host like any other.
      if (hasCode(err, 'MUX_ERR_DESTROYED')) return this.#wait(socket);
      this.#log.warn({ err: (err as Error).message }, 'cannot open a mux channel; local connection refused');
      this.#refuse(socket);
      return;
    }
    const remote = remoteOf(socket);
    this.#clients.set(socket, channel);
    this.#stats.connectionsTotal++;
    let bytesToHost = 0;
    let bytesFromHost = 0;
    // Where the HTTP exchange stands, so that a host close can be told apart: between responses, or cutting one.
    const exchange = new HttpExchangeTracker();
    const sent = (d: Buffer): void => {
      bytesToHost += d.length;
      exchange.request(d);
    };
    if (!this.#pumpUploads || !pumpUpload(socket, channel, sent)) {
      socket.on('data', sent);
      socket.pipe(channel);
    }
    let reason: string | undefined;
    const judgeHostClose = (): void => {
      const meaning = exchange.closeMeaning();
      const id = channel.id.toString();
      switch (meaning) {
        case 'idle':
        case 'unknown':
          this.#log.debug({ id, meaning }, 'host closed its side; keeping the local connection (spice-webdavd behaviour)');
          return;
        case 'truncated':
          this.#stats.hostClosesMidResponse++;
          reason = GuestErrorCode.RESPONSE_CUT;
          this.#log.info({ id, remote }, 'host closed in the middle of a response; closing the local connection so its client sees the cut instead of waiting');
          break;
        case 'ends-response':
          this.#stats.hostClosesMidResponse++;
          this.#log.debug({ id }, 'host closed to end a response that runs until the close; closing the local connection');
          break;
        case 'announced':
          this.#log.debug({ id }, 'host closed after a response that said it would; closing the local connection too');
          break;
      }
      // The channel's close ends the socket after what it holds, earlier whole responses included.
      channel.destroy();
    };
    // Bytes the channel still held when the host closed: they came before the close, so it is judged after them.
    // A second close before they are read moves the judgement to after its own bytes (only a pipelining client
    // can cause that, and the later point still sees whether a response is cut).
    let beforeClose = 0;
    this.#forwardDownload(channel, socket, (d) => {
      bytesFromHost += d.length;
      exchange.response(d);
      if (beforeClose > 0 && (beforeClose -= d.length) <= 0) judgeHostClose();
    });
    channel.on('hostclose', () => {
      this.#stats.hostCloses++;
      beforeClose = channel.readableLength;
      if (beforeClose === 0) judgeHostClose();
    });
    channel.on('error', (err) => this.#log.debug({ id: channel.id.toString(), err: err.message }, 'mux channel error'));
    channel.once('close', () => {
      // The mux gave up on it (host lost, overflow) or it finished: the local connection goes with it.
      if (channel.errored) socket.destroy();
      else socket.end();
    });
    socket.once('close', () => {
      this.#clients.delete(socket);
      // An abrupt close (reset, error) leaves the channel open: destroy it, which still tells the host (size-0).
      // After a FIN, pipe() already ended it and its last bytes and size-0 frame are on their way out.
      if (!channel.writableEnded) channel.destroy();
      reason ??= (channel.errored as (Error & { code?: string }) | null)?.code;
      this.emit('disconnect', { id: channel.id, remote, bytesToHost, bytesFromHost, ...(reason ? { reason } : {}) });
    });
    socket.resume();
    this.emit('connection', { id: channel.id, remote });
  }

  /**
   * channel → local socket, like pipe() but shaped for emulated guests: one port read often holds the tail of
   * a frame, whole frames and the head of the next, delivered as separate pieces in one turn. Corked until the
   * end of the turn, they reach the socket as one writev and wake its reader once (a context switch each, costly
   * under emulation); and the channel pauses only once the socket holds LOCAL_WRITE_BOUND bytes, not at the
   * socket's 16 KiB high-water mark, which pipe() would hit in the middle of a read's pieces.
   */
  #forwardDownload(channel: MuxChannel, socket: Socket, onChunk: (d: Buffer) => void): void {
    channel.on('data', (d: Buffer) => {
      if (socket.writableCorked === 0) {
        socket.cork();
        process.nextTick(() => socket.uncork());
      }
      if (!socket.write(d) && socket.writableLength >= LOCAL_WRITE_BOUND) channel.pause();
      onChunk(d);
    });
    socket.on('drain', () => channel.resume());
    channel.once('end', () => socket.end());
  }

  // --- state, mDNS, shutdown ---------------------------------------------------------------------------------

  #setState(state: GuestProxyState, error?: Error): void {
    this.#state = state;
    this.emit('state', { state, since: new Date(), ...(error ? { error } : {}) });
  }

  async #makeAdvertiser(): Promise<MdnsAdvertiser | undefined> {
    const mdns = this.#options.mdns ?? 'auto';
    if (mdns === false) return undefined;
    if (typeof mdns === 'object') return mdns;
    const avahi = new AvahiAdvertiser({ log: this.#log });
    if (mdns === 'auto' && !(await avahi.available())) {
      this.#log.info({}, 'avahi-daemon not reachable; not advertising over mDNS (mount dav://localhost:9843/ directly)');
      return undefined;
    }
    return avahi;
  }

  async #shutdown(error: Error | undefined): Promise<void> {
    this.#abort.abort();
    const listenersClosed = this.#closeServers();
    for (const [socket, timer] of this.#waiting) {
      clearTimeout(timer);
      socket.destroy();
    }
    this.#waiting.clear();
    const session = this.#session;
    if (session) {
      const timeout = this.#options.closeTimeout ?? 2000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([session.close(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)))]);
      clearTimeout(timer);
      await session.destroy();
    }
    for (const socket of this.#clients.keys()) socket.destroy();
    await this.#running;
    await listenersClosed;
    await this.#advertiser?.close().catch(() => {});
    await this.#device?.close?.().catch(() => {});
    this.#setState('closed', error);
    this.#resolveClosed(error);
  }
}

/** True for 127.0.0.0/8 and ::1 (the only addresses the proxy may listen on). */
function isLoopback(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1';
}

function remoteOf(socket: Socket): string {
  return socket.remoteFamily === 'IPv6' ? `[${socket.remoteAddress}]:${socket.remotePort}` : `${socket.remoteAddress}:${socket.remotePort}`;
}
