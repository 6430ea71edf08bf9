/**
 * The TCP/TLS glue of one SPICE channel: opens the socket, runs a {@link SpiceChannelProtocol} over it, retries
 * over TLS when the plain port answers NEED_SECURED and a TLS port is known (as spice-gtk does), bounds the
 * link stage with a timeout, turns socket failures into SpiceErrors that say what to check, and exposes the
 * socket's flow control (pause/resume reading, wait for drain) to the channel that owns it.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { hasCode } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { SpiceChannelProtocol } from './channel.js';
import { SpiceError } from './errors.js';
import { tlsConnectOptions, type SpiceTlsOptions } from './tls.js';

/** Where and how to reach a SPICE server; shared by every channel of a session. */
export interface SpiceEndpoint {
  /** Host name or address of the SPICE server (QEMU `-spice addr=`). */
  host: string;
  /** Plain TCP port (`-spice port=`). */
  port?: number;
  /** TLS port (`-spice tls-port=`): used when `port` is not given, or when the plain port answers NEED_SECURED. */
  tlsPort?: number;
  /** Certificate checks for TLS connections. */
  tls?: SpiceTlsOptions;
  /** The SPICE password, at most 60 bytes. Never take it from argv: the CLI reads a file or SPICE_PASSWORD. */
  password?: string;
  /** Bound on TCP/TLS connect plus the link stage of one channel; default 10000 ms. */
  linkTimeoutMs?: number;
  /** Largest message body accepted from the server; default 4 MiB. */
  maxMessageSize?: number;
  log?: Logger;
}

/** Default bound on connecting and linking one channel. */
export const DEFAULT_LINK_TIMEOUT_MS = 10_000;

/** Which channel to link and whom to tell when it ends. */
export interface ChannelConnectionOptions {
  channelType: number;
  channelId: number;
  /** 0 for main, the session id for the others. */
  connectionId?: number;
  /** Called once when a linked connection ends: no error for a local close(), else why. */
  onClose: (err?: Error) => void;
}

// Errors that mean "nothing reachable listens there", as opposed to TLS or protocol trouble.
const TCP_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EADDRNOTAVAIL']);

/** One SPICE channel connection over TCP or TLS (see the file comment). */
export class ChannelConnection {
  /** The protocol object: owners register their message handlers on it before `connect()`. */
  readonly protocol: SpiceChannelProtocol;
  readonly #endpoint: SpiceEndpoint;
  readonly #opts: ChannelConnectionOptions;
  readonly #log: Logger;
  #socket: Socket | null = null;
  #secure = false;
  #linked = false;
  #ended = false;
  #pending: { resolve: () => void; reject: (err: Error) => void } | null = null;
  #drainWaiters: Array<(err?: Error) => void> = [];
  #closed: Promise<void> | null = null;

  constructor(endpoint: SpiceEndpoint, options: ChannelConnectionOptions) {
    this.#endpoint = endpoint;
    this.#opts = options;
    this.#log = (endpoint.log ?? silentLogger).child({ channel: `${options.channelType}:${options.channelId}` });
    const protocolOptions: ConstructorParameters<typeof SpiceChannelProtocol>[0] = {
      channelType: options.channelType,
      channelId: options.channelId,
      connectionId: options.connectionId ?? 0,
      log: this.#log,
      onWrite: (chunks) => this.#write(chunks),
      onError: (err) => this.#fail(err),
      onLinked: () => this.#onLinked(),
    };
    if (endpoint.password !== undefined) protocolOptions.password = endpoint.password;
    if (endpoint.maxMessageSize !== undefined) protocolOptions.maxMessageSize = endpoint.maxMessageSize;
    this.protocol = new SpiceChannelProtocol(protocolOptions);
  }

  /** The channel is linked over TLS. */
  get secure(): boolean {
    return this.#secure;
  }

  /** The connection is over (closed, destroyed or lost); nothing is sent any more. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Connect and link; resolves once the server accepted the link. Rejects with a SpiceError. */
  async connect(): Promise<void> {
    const { port, tlsPort, host } = this.#endpoint;
    if (port === undefined && tlsPort === undefined) {
      throw new SpiceError('SPICE_ERR_CONNECT', `no SPICE port given for ${host}: use spice://${host}:PORT or spice+tls://${host}:TLS_PORT`);
    }
    if (port !== undefined) {
      try {
        return await this.#attempt(false, port);
      } catch (err) {
        if (!hasCode(err, 'SPICE_ERR_TLS_REQUIRED') || tlsPort === undefined || this.#ended) throw err;
        this.#log.info({ tlsPort }, 'the SPICE server requires TLS for this channel; retrying on the TLS port');
      }
    }
    return this.#attempt(true, tlsPort as number);
  }

  /** Send one message (see SpiceChannelProtocol.send); false when the socket buffer is full. */
  send(type: number, body?: Buffer | Buffer[]): boolean {
    return this.protocol.send(type, body);
  }

  /** Calls `cb` when the socket has room again, or with an error when the connection ends first. */
  onceWritable(cb: (err?: Error) => void): void {
    const s = this.#socket;
    if (this.#ended || s === null || s.destroyed) cb(new SpiceError('SPICE_ERR_CLOSED', 'the SPICE channel is closed'));
    else if (!s.writableNeedDrain) cb();
    else this.#drainWaiters.push(cb);
  }

  /** Stop reading the socket (the consumer of the channel's data is full). */
  pause(): void {
    this.#socket?.pause();
  }

  /** Read the socket again. */
  resume(): void {
    this.#socket?.resume();
  }

  /** Graceful: stop handling input, half-close the socket and wait (bounded) until it is closed. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    const s = this.#socket;
    this.#closed = new Promise<void>((resolve) => {
      if (s === null || s.destroyed) return resolve();
      s.once('close', () => resolve());
      const t = setTimeout(() => s.destroy(), 2000);
      t.unref();
      s.end();
    });
    this.#end(undefined);
    return this.#closed;
  }

  /** Abort now; `err` is what the owner's onClose receives. Idempotent. */
  destroy(err?: Error): Promise<void> {
    this.#end(err);
    this.#socket?.destroy();
    return Promise.resolve();
  }

  #attempt(secure: boolean, port: number): Promise<void> {
    const { host } = this.#endpoint;
    return new Promise<void>((resolve, reject) => {
      if (this.#ended) return reject(new SpiceError('SPICE_ERR_CLOSED', 'the SPICE channel was closed while connecting'));
      let socket: Socket;
      let tcpUp = false;
      let tlsUp = false;
      const timer = setTimeout(() => {
        fail(new SpiceError('SPICE_ERR_TIMEOUT', `the SPICE server at ${host}:${port} did not complete the link within ${this.#linkTimeout} ms`));
      }, this.#linkTimeout);
      const fail = (err: Error) => {
        if (this.#pending === null) return;
        this.#pending = null;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      this.#pending = {
        resolve: () => {
          this.#pending = null;
          clearTimeout(timer);
          resolve();
        },
        reject: fail,
      };
      try {
        socket = secure ? tlsConnect(tlsConnectOptions(host, port, this.#endpoint.tls)) : netConnect({ host, port });
      } catch (cause) {
        // Only option errors land here (an unreadable CA file, a bad host subject).
        this.#pending = null;
        clearTimeout(timer);
        return reject(new SpiceError('SPICE_ERR_TLS', `cannot set up TLS for ${host}:${port}: ${(cause as Error).message}`, { cause }));
      }
      this.#socket = socket;
      this.#secure = secure;
      socket.setNoDelay(true);
      socket.once('connect', () => (tcpUp = true));
      socket.once('secureConnect', () => (tlsUp = true));
      socket.on('data', (chunk: Buffer) => {
        if (this.#socket === socket) this.protocol.push(chunk);
      });
      socket.on('drain', () => this.#flushDrain());
      socket.on('error', (err: NodeJS.ErrnoException) => {
        if (this.#socket !== socket) return;
        const mapped = this.#mapSocketError(err, secure && !tlsUp, port, tcpUp);
        if (this.#pending) this.#pending.reject(mapped);
        else this.#end(mapped);
      });
      socket.on('close', () => {
        if (this.#socket !== socket) return;
        const lost = new SpiceError(
          'SPICE_ERR_CONNECTION_LOST',
          this.#linked
            ? `the SPICE server at ${host}:${port} closed the connection`
            : `the SPICE server at ${host}:${port} closed the connection during the link`,
        );
        if (this.#pending) this.#pending.reject(lost);
        else this.#end(lost);
        this.#flushDrain();
      });
      // Bytes written before the TCP/TLS connection is up are queued by the socket.
      this.protocol.start(secure);
    });
  }

  get #linkTimeout(): number {
    return this.#endpoint.linkTimeoutMs ?? DEFAULT_LINK_TIMEOUT_MS;
  }

  /** `handshaking`: a TLS connection whose handshake has not completed, so the error is about TLS. */
  #mapSocketError(err: NodeJS.ErrnoException, handshaking: boolean, port: number, tcpUp: boolean): SpiceError {
    const { host } = this.#endpoint;
    if (!tcpUp && err.code !== undefined && TCP_ERRORS.has(err.code)) {
      return new SpiceError(
        'SPICE_ERR_CONNECT',
        `cannot reach the SPICE server at ${host}:${port} (${err.code}): is the VM running with -spice ${this.#secure ? 'tls-port' : 'port'}=${port}${host === '127.0.0.1' || host === 'localhost' ? '' : ` and addr=${host}`}?`,
        { cause: err },
      );
    }
    if (handshaking) {
      return new SpiceError(
        'SPICE_ERR_TLS',
        `TLS verification of the SPICE server at ${host}:${port} failed (${err.code ?? err.message}): give the CA that signed QEMU's server-cert.pem (x509-dir/ca-cert.pem) with --ca-file, and check the host name or --host-subject`,
        { cause: err },
      );
    }
    return new SpiceError('SPICE_ERR_CONNECTION_LOST', `the connection to the SPICE server at ${host}:${port} failed: ${err.message}`, { cause: err });
  }

  #write(chunks: Buffer[]): boolean {
    const s = this.#socket;
    if (s === null || s.destroyed || this.#ended) return false;
    if (chunks.length === 1) return s.write(chunks[0] as Buffer);
    s.cork();
    let ok = true;
    for (const c of chunks) ok = s.write(c);
    s.uncork();
    return ok;
  }

  #onLinked(): void {
    this.#linked = true;
    this.#pending?.resolve();
  }

  #fail(err: SpiceError): void {
    if (this.#pending) this.#pending.reject(err);
    else void this.destroy(err);
  }

  #flushDrain(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    const err = this.#ended || this.#socket?.destroyed ? new SpiceError('SPICE_ERR_CLOSED', 'the SPICE channel is closed') : undefined;
    for (const cb of waiters) cb(err);
  }

  #end(err: Error | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.protocol.close();
    this.#pending?.reject(err ?? new SpiceError('SPICE_ERR_CLOSED', 'the SPICE channel was closed while connecting'));
    if (err !== undefined) this.#socket?.destroy();
    this.#flushDrain();
    if (this.#linked) this.#opts.onClose(err);
  }
}
