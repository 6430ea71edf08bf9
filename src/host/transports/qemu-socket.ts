/**
 * The QEMU socket transport: `spicedav share --qemu-socket PATH`. The VM's webdav virtserialport sits on
 * `-chardev socket,id=webdav0,path=PATH,server=on,wait=off` instead of a spiceport chardev; connecting to that
 * unix socket attaches us as the port's host side (the guest sees the host connect), with mux frames directly
 * on the socket. No SPICE client is involved, so it works alongside any viewer. Each connection is one 'link';
 * when it ends (QEMU stopped, VM destroyed) we reconnect with capped exponential backoff.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { silentLogger, type Logger } from '../../log.js';
import { Backoff, type BackoffOptions } from '../backoff.js';
import { RepeatedFailure } from '../repeated-failure.js';
import { HostError } from '../errors.js';
import type { Transport, TransportState } from '../transport.js';

/** Options of {@link QemuSocketTransport}. */
export interface QemuSocketTransportOptions {
  /** The unix socket of QEMU's `-chardev socket,...,server=on` for the webdav virtserialport. */
  path: string;
  /** Reconnection delays (default 500 ms doubling to 30 s). */
  reconnect?: BackoffOptions;
  log?: Logger;
}

// "Nothing listens there yet" (QEMU not started, or restarting): wait and retry.
const NOT_YET = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

/**
 * The QEMU chardev socket transport (see the file comment). QEMU serves one connection at a time on such a
 * socket; a second spicedav would wait in its backlog.
 */
export class QemuSocketTransport extends EventEmitter implements Transport {
  readonly #opts: QemuSocketTransportOptions;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #failures = new RepeatedFailure();
  #state: TransportState = { state: 'closed', detail: 'not started' };
  #started = false;
  #closed = false;
  #socket: Socket | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: QemuSocketTransportOptions) {
    super();
    this.#opts = options;
    this.#log = options.log ?? silentLogger;
    this.#backoff = new Backoff(options.reconnect);
  }

  /** The latest state. */
  get state(): TransportState {
    return this.#state;
  }

  /** Start connecting; reconnects by itself until close(). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#connect();
  }

  /** Disconnect (the guest sees the host leave) and stop reconnecting. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    const s = this.#socket;
    this.#socket = null;
    if (s && !s.destroyed) {
      const gone = new Promise<void>((resolve) => s.once('close', () => resolve()));
      s.destroy();
      await gone;
    }
    this.#setState({ state: 'closed', detail: 'stopped' });
  }

  #connect(): void {
    if (this.#closed) return;
    const { path } = this.#opts;
    this.#setState({ state: 'connecting', detail: `connecting to ${path}` });
    const socket = connect({ path });
    this.#socket = socket;
    let linked = false;
    socket.once('connect', () => {
      linked = true;
      this.#backoff.reset();
      this.#failures.reset();
      this.#setState({ state: 'linked', detail: `attached to the webdav port through ${path}` });
      // The mux session owns the socket from here: its end or destruction is the end of this link.
      this.emit('link', socket);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (linked) return; // reported by 'close'
      const code = err.code ?? '';
      const error = NOT_YET.has(code)
        ? new HostError('HOST_ERR_SOCKET', `no QEMU listens on ${path} (${code}): start the VM with -chardev socket,id=webdav0,path=${path},server=on,wait=off on the webdav virtserialport`, { cause: err })
        : new HostError('HOST_ERR_SOCKET', `cannot connect to ${path}: ${err.message}`, { cause: err });
      socket.destroy();
      this.#retry(error);
    });
    socket.once('close', () => {
      if (this.#socket === socket) this.#socket = null;
      if (linked && !this.#closed) this.#retry(new HostError('HOST_ERR_CLOSED', `the connection to ${path} ended (QEMU stopped?)`));
    });
  }

  #retry(error: HostError): void {
    if (this.#closed) return;
    const delay = this.#backoff.next();
    this.#setState(this.#failures.retrying(error, delay, this.#log));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#connect();
    }, delay);
  }

  #setState(state: TransportState): void {
    this.#state = state;
    this.emit('state', state);
  }
}
