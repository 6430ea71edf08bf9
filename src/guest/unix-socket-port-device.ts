import type { Duplex } from 'node:stream';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { lstat, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { GuestError, GuestErrorCode } from './errors.js';
import type { PortDevice, PortDeviceOptions } from './port-device.js';

/** Options of {@link UnixSocketPortDevice}. */
export interface UnixSocketPortDeviceOptions extends PortDeviceOptions {
  /** The socket path. */
  path: string;
  /**
   * false (default): connect to a listener that plays the host; while nobody listens, retry (100 ms doubling to
   * `pollInterval`). true: listen on `path`; each accepted connection is one host session, a second one while a
   * session runs is refused (as the SPICE server refuses a second client on a port).
   */
  listen?: boolean;
}

// Errors that mean "no host yet" when connecting.
const RETRY_CONNECT_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

/**
 * A unix socket standing in for the virtio port: the host is attached while the socket is connected, and
 * leaves when it ends. Used by the tests and by harnesses that put a socket where the port would be.
 */
export class UnixSocketPortDevice implements PortDevice {
  /** The socket path. */
  readonly path: string;
  readonly #listen: boolean;
  readonly #pollInterval: number;
  readonly #minPollInterval: number;
  readonly #log: Logger;
  // Listen mode only.
  #server: Server | undefined;
  #listening: Promise<void> | undefined;
  #active: Socket | undefined;
  #queued: Socket | undefined;
  #waiter: ((s: Socket) => void) | undefined;

  constructor(options: UnixSocketPortDeviceOptions) {
    this.path = options.path;
    this.#listen = options.listen ?? false;
    this.#pollInterval = options.pollInterval ?? 1000;
    this.#minPollInterval = Math.min(options.minPollInterval ?? 100, this.#pollInterval);
    this.#log = (options.log ?? silentLogger).child({ component: 'port' });
  }

  /** Resolves with the connected socket once a host is there. */
  open(signal: AbortSignal): Promise<Duplex> {
    return this.#listen ? this.#accept(signal) : this.#connect(signal);
  }

  /** Listen mode: stop listening and drop a connection waiting to be used. Idempotent. */
  async close(): Promise<void> {
    this.#queued?.destroy();
    this.#queued = undefined;
    const server = this.#server;
    this.#server = undefined;
    this.#listening = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #connect(signal: AbortSignal): Promise<Duplex> {
    let delay = this.#minPollInterval;
    let logged = false;
    for (;;) {
      signal.throwIfAborted();
      try {
        return await connectOnce(this.path, signal);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (!RETRY_CONNECT_CODES.has(code)) {
          if (signal.aborted) throw signal.reason;
          throw new GuestError(GuestErrorCode.DEVICE_OPEN, `cannot connect to ${this.path}: ${(err as Error).message}`, { cause: err });
        }
        if (!logged) this.#log.info({ path: this.path, code }, 'no host on the socket yet; waiting');
        logged = true;
      }
      await sleep(delay, undefined, { signal });
      delay = Math.min(delay * 2, this.#pollInterval);
    }
  }

  async #accept(signal: AbortSignal): Promise<Duplex> {
    signal.throwIfAborted();
    this.#listening ??= this.#startServer();
    await this.#listening;
    const socket =
      this.#queued ??
      (await new Promise<Socket>((resolve, reject) => {
        const onAbort = (): void => {
          this.#waiter = undefined;
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.#waiter = (s) => {
          signal.removeEventListener('abort', onAbort);
          this.#waiter = undefined;
          resolve(s);
        };
      }));
    this.#queued = undefined;
    this.#active = socket;
    socket.once('close', () => {
      if (this.#active === socket) this.#active = undefined;
    });
    return socket;
  }

  #onConnection(socket: Socket): void {
    if (this.#waiter) return this.#waiter(socket);
    if (this.#active || this.#queued) {
      this.#log.warn({ path: this.path }, 'refusing a second host connection while one is attached');
      socket.destroy();
      return;
    }
    // Between two sessions (the proxy is about to call open() again): keep it for then.
    this.#queued = socket;
    socket.once('close', () => {
      if (this.#queued === socket) this.#queued = undefined;
    });
  }

  async #startServer(): Promise<void> {
    const server = createServer({ allowHalfOpen: false }, (s) => this.#onConnection(s));
    this.#server = server;
    try {
      await listenOn(server, this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || !(await isStaleSocket(this.path))) {
        this.#listening = undefined;
        throw new GuestError(GuestErrorCode.DEVICE_OPEN, `cannot listen on ${this.path}: ${(err as Error).message}`, { cause: err });
      }
      // A socket file left by a previous run that nobody serves any more.
      await unlink(this.path);
      await listenOn(server, this.path);
    }
  }
}

function connectOnce(path: string, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path, allowHalfOpen: false });
    const onAbort = (): void => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
}

function listenOn(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
}

/** True when `path` is a socket file nobody accepts on (connect is refused). */
async function isStaleSocket(path: string): Promise<boolean> {
  const st = await lstat(path).catch(() => undefined);
  if (!st?.isSocket()) return false;
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
