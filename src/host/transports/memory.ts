/**
 * The in-process transport, for the demo and tests: the guest end is a PortDevice-like object whose `open()`
 * resolves with one side of an in-memory Duplex pair while the transport emits 'link' with the other side.
 * Each `open()` is one link, like the guest opening the virtio port; either side ending ends both.
 */
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import type { Transport, TransportState } from '../transport.js';
import { HostError } from '../errors.js';

/** What the guest side of a memory transport offers: the guest `PortDevice` interface of the contract. */
export interface MemoryPortDevice {
  /** Resolves, once the transport is started, with the guest's side of a new link; rejects when `signal` aborts. */
  open(signal: AbortSignal): Promise<Duplex>;
}

/** The host side: a Transport plus `drop()` to simulate the port closing or the VM going away. */
export class MemoryTransport extends EventEmitter implements Transport {
  #state: TransportState = { state: 'closed', detail: 'not started' };
  #started = false;
  #closed = false;
  readonly #links = new Set<MemorySide>();
  readonly #waiters = new Set<() => void>();

  /** The latest state. */
  get state(): TransportState {
    return this.#state;
  }

  /** Start: pending and later `guestEnd.open()` calls are linked. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#setState({ state: 'waiting', detail: 'waiting for the guest to open the port' });
    for (const w of this.#waiters) w();
    this.#waiters.clear();
  }

  /** End every link (both sides see the stream end) and refuse new ones. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.drop();
    for (const w of this.#waiters) w();
    this.#waiters.clear();
    this.#setState({ state: 'closed', detail: 'stopped' });
  }

  /** End the current links, as when the guest closes the port; the guest may `open()` again. */
  drop(): void {
    for (const side of this.#links) side.destroy();
    this.#links.clear();
  }

  /** What `guestEnd.open()` calls: wait until started, then create one link and return its guest side. */
  async openGuest(signal: AbortSignal): Promise<Duplex> {
    while (!this.#started && !this.#closed) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.#waiters.delete(done);
          reject(signal.reason ?? new Error('aborted'));
        };
        const done = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        if (signal.aborted) return onAbort();
        this.#waiters.add(done);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    if (this.#closed) throw new HostError('HOST_ERR_CLOSED', 'the memory transport is closed');
    signal.throwIfAborted();
    const [host, guest] = memoryPair();
    this.#links.add(host);
    host.once('close', () => {
      this.#links.delete(host);
      if (!this.#closed && this.#links.size === 0) this.#setState({ state: 'waiting', detail: 'the guest closed the port' });
    });
    this.#setState({ state: 'linked', detail: 'guest attached (in memory)' });
    this.emit('link', host);
    return guest;
  }

  #setState(state: TransportState): void {
    this.#state = state;
    this.emit('state', state);
  }
}

/** An in-process transport and the guest end to hand to a guest-side component (or a test). */
export function createMemoryTransport(): { transport: MemoryTransport; guestEnd: MemoryPortDevice } {
  const transport = new MemoryTransport();
  return { transport, guestEnd: { open: (signal) => transport.openGuest(signal) } };
}

/** One side of an in-memory pipe: writes complete when the peer accepted the bytes (real backpressure). */
class MemorySide extends Duplex {
  peer!: MemorySide;
  #pending: (() => void) | null = null;

  constructor() {
    super({ highWaterMark: 256 * 1024, allowHalfOpen: false });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.peer.destroyed) return cb();
    if (this.peer.push(chunk)) cb();
    else this.peer.#pending = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.peer.push(null);
    cb();
  }

  override _read(): void {
    const cb = this.#pending;
    this.#pending = null;
    cb?.();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    // Either end going away is the link ending for both: the peer sees its stream end, as a port close.
    if (!this.peer.destroyed) {
      this.peer.push(null);
      this.peer.destroy();
    }
    const pending = this.#pending;
    this.#pending = null;
    pending?.();
    cb(err);
  }
}

function memoryPair(): [MemorySide, MemorySide] {
  const a = new MemorySide();
  const b = new MemorySide();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
