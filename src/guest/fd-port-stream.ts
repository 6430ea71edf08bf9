import { Duplex } from 'node:stream';
import { close, read, write } from 'node:fs';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';

/** Options of {@link FdPortStream}. */
export interface FdPortStreamOptions {
  /** Bytes already read by the host check, delivered first. */
  initial?: Buffer;
  /** Longest pause between two reads while the host is attached but sends nothing, ms (default 50). */
  maxIdleDelay?: number;
  log?: Logger;
}

// Reads land in a shared slab and are pushed as views of it, so a 4 KiB virtio read does not pin a 64 KiB buffer.
const SLAB_SIZE = 256 * 1024;
const READ_SIZE = 64 * 1024;
// The first retry after EAGAIN; the delay doubles up to maxIdleDelay while the port stays quiet.
const FIRST_RETRY_DELAY = 1;

/** The errno codes that mean "the host side is gone" rather than "something broke". */
const HOST_GONE_CODES = new Set(['EIO', 'ENODEV', 'ENXIO']);

/**
 * A Duplex over a non-blocking file descriptor of a port (the virtio char device, or a pty standing in for it).
 *
 * Why not `net.Socket({ fd })` or a blocking `fs.createReadStream`: Node's socket refuses character devices
 * (libuv classes them as files), and a blocking read cannot tell "host attached, idle" from "waiting", ties up a
 * thread-pool thread, and a blocking write issued when the host leaves sleeps until the *next* host and then
 * sends it half a frame. So the fd is O_NONBLOCK and the kernel's answers are read literally
 * (torvalds/linux drivers/char/virtio_console.c `port_fops_read`, `port_fops_write`):
 * - read() > 0: data; read() == 0: the host is not connected (it left); EAGAIN: connected, nothing to read;
 * - write() EAGAIN: the host is not consuming (or not connected); a write takes at most 32 KiB at a time;
 * - EIO / ENODEV: pty master closed / port hot-unplugged, treated like the host leaving.
 * This is the fallback for a Node without libuv's pipe handle (see poll-port-stream.ts, which epoll drives and
 * which VirtioPortDevice prefers): public Node has no poll() for such an fd, so while the port is quiet the read
 * is retried after a pause that starts at 1 ms and doubles up to `maxIdleDelay`; every write resets it to 1 ms
 * because the host's answer is due soon.
 * While data flows, reads follow each other without pause. The stream ends when the host leaves and then
 * closes the fd (a port cannot be half-closed, so end() from our side is a no-op).
 */
export class FdPortStream extends Duplex {
  readonly #fd: number;
  readonly #maxIdleDelay: number;
  readonly #log: Logger;
  #slab = Buffer.allocUnsafe(SLAB_SIZE);
  #slabOffset = 0;
  #idleDelay = 0;
  #readTimer: NodeJS.Timeout | undefined;
  #writeTimer: NodeJS.Timeout | undefined;
  #writeTimerCb: ((err?: Error | null) => void) | undefined;
  // fs operations in flight; the fd is closed only when none is left, so its number cannot be reused under them.
  #inFlight = 0;
  #onIdle: (() => void) | undefined;
  #hostGone = false;

  constructor(fd: number, options: FdPortStreamOptions = {}) {
    super({ allowHalfOpen: false, readableHighWaterMark: READ_SIZE, writableHighWaterMark: READ_SIZE });
    this.#fd = fd;
    this.#maxIdleDelay = options.maxIdleDelay ?? 50;
    this.#log = options.log ?? silentLogger;
    if (options.initial?.length) this.push(options.initial);
    // Nothing can be sent to a host that left: once the read side ended, release the fd.
    this.once('end', () => this.destroy());
  }

  override _read(): void {
    this.#readOnce();
  }

  #readOnce(): void {
    this.#readTimer = undefined;
    if (this.destroyed || this.#hostGone) return;
    if (SLAB_SIZE - this.#slabOffset < READ_SIZE) {
      this.#slab = Buffer.allocUnsafe(SLAB_SIZE);
      this.#slabOffset = 0;
    }
    const slab = this.#slab;
    const offset = this.#slabOffset;
    this.#inFlight++;
    read(this.#fd, slab, offset, READ_SIZE, null, (err, n) => {
      this.#settled();
      if (this.destroyed) return;
      if (err) {
        if (err.code === 'EAGAIN') return this.#retryReadLater();
        if (HOST_GONE_CODES.has(err.code ?? '')) return this.#hostLeft(err.code);
        this.destroy(err);
        return;
      }
      if (n === 0) return this.#hostLeft('EOF');
      this.#slabOffset = offset + n;
      this.#idleDelay = 0;
      // Readable calls _read again when it wants more, so no loop here.
      this.push(slab.subarray(offset, offset + n));
    });
  }

  #retryReadLater(): void {
    this.#idleDelay = this.#idleDelay === 0 ? FIRST_RETRY_DELAY : Math.min(this.#idleDelay * 2, this.#maxIdleDelay);
    this.#readTimer = setTimeout(() => this.#readOnce(), this.#idleDelay);
  }

  /** A request just went out: look for the answer soon rather than after the idle backoff. */
  #expectAnswer(): void {
    if (this.#readTimer === undefined || this.#idleDelay <= FIRST_RETRY_DELAY) return;
    clearTimeout(this.#readTimer);
    this.#idleDelay = 0;
    this.#retryReadLater();
  }

  #hostLeft(why: string | undefined): void {
    if (this.#hostGone) return;
    this.#hostGone = true;
    this.#log.debug({ why }, 'port: host side gone');
    this.push(null);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#writeFrom(chunk, 0, FIRST_RETRY_DELAY, cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    // The mux writes header + payload pairs; one syscall for several of them is cheaper than one each.
    this.#writeFrom(Buffer.concat(chunks.map((c) => c.chunk)), 0, FIRST_RETRY_DELAY, cb);
  }

  #writeFrom(data: Buffer, offset: number, delay: number, cb: (err?: Error | null) => void): void {
    this.#writeTimer = undefined;
    this.#writeTimerCb = undefined;
    if (this.destroyed) return cb(new Error('port closed'));
    this.#inFlight++;
    write(this.#fd, data, offset, data.length - offset, null, (err, n) => {
      this.#settled();
      if (this.destroyed) return cb(new Error('port closed'));
      if (err) {
        if (err.code !== 'EAGAIN') {
          if (HOST_GONE_CODES.has(err.code ?? '')) this.#hostLeft(err.code);
          return cb(err);
        }
        // The host is not taking data (its queue is full, or it left and the read side will notice).
        this.#writeTimerCb = cb;
        this.#writeTimer = setTimeout(() => this.#writeFrom(data, offset, Math.min(delay * 2, this.#maxIdleDelay), cb), delay);
        return;
      }
      this.#expectAnswer();
      if (offset + n < data.length) return this.#writeFrom(data, offset + n, FIRST_RETRY_DELAY, cb);
      cb();
    });
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb();
  }

  #settled(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) this.#onIdle?.();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    clearTimeout(this.#readTimer);
    clearTimeout(this.#writeTimer);
    this.#writeTimerCb?.(new Error('port closed'));
    const closeFd = (): void => close(this.#fd, () => cb(err));
    if (this.#inFlight === 0) closeFd();
    else this.#onIdle = closeFd;
  }
}
