import { Socket } from 'node:net';
import { fstatSync, readFileSync, readvSync } from 'node:fs';
import { isatty } from 'node:tty';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';

/** Options of {@link openPollPortStream}. */
export interface PollPortStreamOptions {
  /** Bytes already read by the host check, delivered first. */
  initial?: Buffer;
  log?: Logger;
}

/** libuv's pipe handle as `process.binding('pipe_wrap')` exposes it (internal API, hence checked at runtime). */
interface PipeWrapBinding {
  Pipe: new (type: number) => { open(fd: number): number };
  constants: { SOCKET: number };
}

/** The errno codes that mean "the host side is gone" rather than "something broke" (pty master closed: EIO). */
const HOST_GONE_CODES = new Set(['EIO', 'ENODEV', 'ENXIO', 'EPIPE']);

let binding: PipeWrapBinding | Error | undefined;

/**
 * libuv's pipe handle, or why it cannot be had. `process.binding` is deprecated (DEP0111, a warning only under
 * --pending-deprecation on Node 20) and may go away: then the caller falls back to the thread-pool reader.
 */
export function pipeWrap(): PipeWrapBinding | Error {
  if (binding === undefined) {
    try {
      const b = (process as unknown as { binding(name: string): unknown }).binding('pipe_wrap') as Partial<PipeWrapBinding>;
      binding = typeof b.Pipe === 'function' && typeof b.constants?.SOCKET === 'number'
        ? (b as PipeWrapBinding)
        : new Error("process.binding('pipe_wrap') has no Pipe handle");
    } catch (err) {
      binding = err instanceof Error ? err : new Error(String(err));
    }
  }
  return binding;
}

/**
 * Why `fd` cannot be watched with epoll, or undefined if it can. libuv adds the fd to epoll without asking and
 * aborts the whole process if epoll_ctl fails (EPERM for a device without a poll method, /dev/null for one), so
 * only devices known to implement poll qualify: ttys (the pty standing in for the port in tests) and virtio
 * ports (torvalds/linux drivers/char/virtio_console.c `port_fops_poll`, major "virtio-portsdev" in /proc/devices).
 */
export function unpollableReason(fd: number): string | undefined {
  if (isatty(fd)) return undefined;
  const st = fstatSync(fd);
  if (!st.isCharacterDevice()) return 'not a character device';
  // Linux dev_t: major in bits 8-19 (and 32+, for majors above 4095).
  const major = Math.floor(st.rdev / 256) % 4096 + Math.floor(st.rdev / 2 ** 32) * 4096;
  return virtioPortMajors().has(major) ? undefined : `character device ${major} is neither a tty nor a virtio port`;
}

function virtioPortMajors(): Set<number> {
  const majors = new Set<number>();
  let devices = '';
  try {
    devices = readFileSync('/proc/devices', 'utf8');
  } catch {
    return majors;
  }
  for (const m of devices.matchAll(/^\s*(\d+) virtio-portsdev$/gm)) majors.add(Number(m[1]));
  return majors;
}

/**
 * A Duplex over a port's non-blocking fd, driven by epoll on the main thread: the fd becomes a libuv pipe handle
 * (uv_pipe_open takes any fd whose driver implements poll) inside a `net.Socket`, the way spice-webdavd wraps it
 * in a GIO stream. `net.Socket({ fd })` refuses it: libuv classes a character device that is not a tty as a file.
 *
 * Per wake-up libuv reads until EAGAIN, so one POLLIN carries all queued 4 KiB virtio buffers (the kernel returns
 * one per read()), and writes go out from the main thread, resumed on POLLOUT after EAGAIN (the kernel takes at
 * most 32 KiB per write() and answers EAGAIN while the host's queue is full). The host leaving shows as POLLHUP
 * and read() == 0, i.e. 'end'; the stream is then destroyed, which closes the fd (libuv owns it from here on),
 * so that the device can reopen the port and wait for the next host. Nothing written after that can leak into the
 * next host's session: the fd is non-blocking and closed with its queue.
 *
 * Throws if the binding is missing or the fd cannot be polled (see {@link unpollableReason}): check first.
 */
export function openPollPortStream(fd: number, options: PollPortStreamOptions = {}): Duplex {
  const b = pipeWrap();
  if (b instanceof Error) throw b;
  const why = unpollableReason(fd);
  if (why) throw new Error(`fd ${fd} cannot be polled: ${why}`);
  const log = options.log ?? silentLogger;
  const handle = new b.Pipe(b.constants.SOCKET);
  const rc = handle.open(fd);
  if (rc < 0) throw new Error(`uv_pipe_open(${fd}) failed: ${rc}`);
  const socket = new PortSocket(fd, { handle, readable: true, writable: true, allowHalfOpen: false, writableHighWaterMark: WRITE_HIGH_WATER_MARK } as ConstructorParameters<typeof Socket>[0]);
  if (options.initial?.length) socket.unshift(options.initial);
  // Nothing can be sent to a host that left: release the fd at once instead of flushing writes into a closed port.
  socket.once('end', () => {
    log.debug({ why: 'EOF' }, 'port: host side gone');
    socket.destroy();
  });
  return socket;
}

// A wake-up's reads are gathered into views of a shared slab, up to DRAIN_SIZE bytes per 'data' event: a whole
// SPICE data message of a download (the host sends up to 256 KiB of mux frames per message, see
// src/spice/port-channel.ts) with the short buffer that ends it, so that one wake-up takes all of it.
const DRAIN_SIZE = 260 * 1024;
const SLAB_SIZE = 1024 * 1024;
// The kernel hands out one buffer of at most this size per read() (virtio_console.c PAGE_SIZE in-buffers).
const PORT_BUFFER_SIZE = 4096;
// Bytes queued before the mux's scheduler waits for 'drain': several 64 KiB frames, so that one write(v) call
// carries them all.
const WRITE_HIGH_WATER_MARK = 256 * 1024;
// virtio_console takes at most this much per write() (port_fops_write); bigger pieces are cut to it.
const PORT_WRITE_MAX = 32 * 1024;
// Small pieces are gathered into one buffer of this size.
const GATHER_SIZE = 64 * 1024;

/** net.Socket's own write and writev (write(2) and writev(2) on the handle; the typings mark _writev optional). */
const { _write: socketWrite, _writev: socketWritev } = Socket.prototype as unknown as {
  _write(this: Socket, chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void;
  _writev(this: Socket, chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, cb: (err?: Error | null) => void): void;
};

/**
 * The net.Socket over the port, with three changes. Writes are shaped for virtio_console (see _writev). It
 * cannot be half-closed (shutdown(2) is for sockets), so end() only stops our writes. And each piece libuv reads
 * is topped up with what else the port has queued (see #drain), because virtio_console's read() returns one 4 KiB
 * buffer and libuv stops after a short read until the next epoll wake-up: without this, every 4 KiB would cost a
 * loop turn and a trip through the mux and the local socket (a write and a wake-up of the client each), which
 * under emulation dominated GET.
 */
class PortSocket extends Socket {
  readonly #fd: number;
  #slab = Buffer.allocUnsafe(SLAB_SIZE);
  #slabOffset = 0;
  readonly #gather = Buffer.allocUnsafeSlow(GATHER_SIZE);

  constructor(fd: number, options: ConstructorParameters<typeof Socket>[0]) {
    super(options);
    this.#fd = fd;
  }

  /**
   * The mux writes header + payload pairs and, for uploads, whole frames built in place (see
   * MuxChannel.writeInPlace). virtio_console takes at most 32 KiB per write() and has no write_iter, so the
   * kernel runs writev(2) as one write() per iovec, each its own virtqueue buffer and host notification (a VM
   * exit), stopping at the first short one. Hence: small pieces are gathered into one buffer, and big ones are
   * cut into 32 KiB iovecs, never copied (a copy of 64 KiB under emulation costs more than a write), so that
   * one writev(2) moves the whole batch instead of stopping after 32 KiB.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    const out: Buffer[] = [];
    // Writable never calls _writev again before `cb`, so one gather buffer serves every write: a fresh buffer
    // per write would cost page faults and garbage collection on top of the copy.
    const gather = this.#gather;
    let runStart = 0;
    let off = 0;
    const flushRun = (): void => {
      if (off > runStart) out.push(gather.subarray(runStart, off));
      runStart = off;
    };
    for (const { chunk } of chunks) {
      if (chunk.length >= PORT_WRITE_MAX || chunk.length > gather.length - off) {
        flushRun();
        for (let i = 0; i < chunk.length; i += PORT_WRITE_MAX) out.push(chunk.subarray(i, i + PORT_WRITE_MAX));
      } else {
        off += chunk.copy(gather, off);
      }
    }
    flushRun();
    if (out.length === 1) socketWrite.call(this, out[0] as Buffer, 'buffer' as BufferEncoding, cb);
    else socketWritev.call(this, out.map((chunk) => ({ chunk, encoding: 'buffer' as BufferEncoding })), cb);
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (chunk.length > PORT_WRITE_MAX) this._writev([{ chunk }], cb);
    else socketWrite.call(this, chunk, encoding, cb);
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    // A short piece ends what the host wrote in one go (QEMU fills the guest's buffers one host write at a time):
    // the next read would most likely fail with EAGAIN, and a failed read costs a thrown exception. If more was
    // queued after all, epoll reports the port readable again at once.
    if (!Buffer.isBuffer(chunk) || chunk.length < PORT_BUFFER_SIZE || chunk.length > DRAIN_SIZE - PORT_BUFFER_SIZE) {
      return super.push(chunk, encoding);
    }
    return super.push(this.#drain(chunk));
  }

  /**
   * `first` followed by whatever the port has queued, up to DRAIN_SIZE, in one readv(2): the port has no
   * read_iter, so the kernel reads one iovec after the other, each getting one queued 4 KiB buffer, and stops at
   * the first short one (the end of a host write), at EAGAIN (keeping what it read) or EOF. One system call
   * instead of one per 4 KiB, which under emulation was most of a download's cost in the guest.
   */
  #drain(first: Buffer): Buffer {
    if (SLAB_SIZE - this.#slabOffset < DRAIN_SIZE) {
      this.#slab = Buffer.allocUnsafe(SLAB_SIZE);
      this.#slabOffset = 0;
    }
    const slab = this.#slab;
    const start = this.#slabOffset;
    const end = start + DRAIN_SIZE;
    let off = start + first.copy(slab, start);
    const iov: Buffer[] = [];
    for (let o = off; end - o >= PORT_BUFFER_SIZE; o += PORT_BUFFER_SIZE) iov.push(slab.subarray(o, o + PORT_BUFFER_SIZE));
    try {
      // 0: the host left; libuv's next read gets the same 0 and ends the stream.
      if (iov.length > 0) off += readvSync(this.#fd, iov);
    } catch {
      // EAGAIN: nothing more queued. Anything else (EIO: host gone) libuv's next read sees and reports itself.
    }
    this.#slabOffset = off;
    return slab.subarray(start, off);
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb();
  }

  override destroy(err?: Error): this {
    // EIO / ENODEV: pty master closed / port hot-unplugged, the host leaving rather than a failure.
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    return super.destroy(code && HOST_GONE_CODES.has(code) ? undefined : err);
  }
}
