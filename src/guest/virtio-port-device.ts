import type { Duplex } from 'node:stream';
import { close, constants, fstat, open, read } from 'node:fs';
import { isatty } from 'node:tty';
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { GuestError, GuestErrorCode } from './errors.js';
import { FdPortStream } from './fd-port-stream.js';
import { openPollPortStream, pipeWrap, unpollableReason } from './poll-port-stream.js';
import type { PortDevice, PortDeviceOptions } from './port-device.js';
import { DEFAULT_PORT_PATH } from './port-device.js';

/** Options of {@link VirtioPortDevice}. */
export interface VirtioPortDeviceOptions extends PortDeviceOptions {
  /** The port's character device (default `/dev/virtio-ports/org.spice-space.webdav.0`). */
  path?: string;
  /** Longest pause between reads while the host is attached but quiet, ms (default 50); see FdPortStream. */
  maxIdleDelay?: number;
  /**
   * How an attached port carries data: `poll` (epoll on the main thread, see openPollPortStream), `threadpool`
   * (FdPortStream's timed reads, for a Node without `process.binding('pipe_wrap')`), or `auto` (default): `poll`
   * when the binding is there and the device can be polled, else `threadpool`.
   */
  stream?: PortStreamKind;
}

/** See {@link VirtioPortDeviceOptions.stream}. */
export type PortStreamKind = 'auto' | 'poll' | 'threadpool';

const openAsync = promisify(open);
const fstatAsync = promisify(fstat);
const closeAsync = promisify(close);
const execFileAsync = promisify(execFile);

// Errors that waiting can fix: the port is not plugged in yet (ENOENT, ENODEV, ENXIO), another process holds it
// (EBUSY: virtio ports allow one opener, e.g. a running spice-webdavd), or a pty's master is gone (EIO).
const RETRY_OPEN_CODES = new Set(['ENOENT', 'ENODEV', 'ENXIO', 'EBUSY', 'EIO']);

type HostCheck = { kind: 'absent' } | { kind: 'present'; data?: Buffer } | { kind: 'gone' };

/**
 * The virtio-serial port as a {@link PortDevice}, with Linux semantics (torvalds/linux
 * drivers/char/virtio_console.c): the device can be opened whether or not a host is connected; opening it is what
 * makes QEMU report the port as opened to the SPICE client. A non-blocking read() then answers 0 while no host is
 * connected and EAGAIN once one is (spice-webdavd polls POLLHUP for the same fact). So `open()` opens the device
 * once and checks with a read every 100 ms, doubling to every `pollInterval` (1 s); it keeps the fd open
 * meanwhile, so the SPICE client does not see the port flap. A missing or busy device is retried the same way.
 *
 * A tty (a pty standing in for the port in tests, or the `/dev/tty.*` port of macOS guests) has no "no host"
 * state: it counts as attached as soon as it opens, and its master closing (EIO) counts as the host leaving. It
 * is switched to raw mode with stty first, since the line discipline would echo and rewrite bytes.
 */
export class VirtioPortDevice implements PortDevice {
  /** The device path this port opens. */
  readonly path: string;
  readonly #pollInterval: number;
  readonly #minPollInterval: number;
  readonly #maxIdleDelay: number | undefined;
  readonly #stream: PortStreamKind;
  readonly #log: Logger;

  constructor(options: VirtioPortDeviceOptions = {}) {
    this.path = options.path ?? DEFAULT_PORT_PATH;
    this.#pollInterval = options.pollInterval ?? 1000;
    this.#minPollInterval = Math.min(options.minPollInterval ?? 100, this.#pollInterval);
    this.#maxIdleDelay = options.maxIdleDelay;
    this.#stream = options.stream ?? 'auto';
    this.#log = (options.log ?? silentLogger).child({ component: 'port' });
  }

  /** Resolves with a stream over the port once a host is attached; see the class comment for how that is seen. */
  async open(signal: AbortSignal): Promise<Duplex> {
    let delay = this.#minPollInterval;
    const pause = async (): Promise<void> => {
      await sleep(delay, undefined, { signal });
      delay = Math.min(delay * 2, this.#pollInterval);
    };
    let lastWhy = '';
    for (;;) {
      signal.throwIfAborted();
      const fd = await this.#openDevice().catch((err: NodeJS.ErrnoException) => {
        if (!RETRY_OPEN_CODES.has(err.code ?? '')) throw err;
        if (err.code !== lastWhy) this.#log.info({ path: this.path, code: err.code }, 'port not available yet; waiting');
        lastWhy = err.code ?? '';
        return undefined;
      });
      if (fd === undefined) {
        await pause();
        continue;
      }
      try {
        for (;;) {
          const check = await checkHost(fd);
          if (check.kind === 'present') {
            this.#log.debug({ path: this.path }, 'host attached');
            return this.#streamOver(fd, check.data);
          }
          if (check.kind === 'gone') break;
          if (lastWhy !== 'no host') this.#log.info({ path: this.path }, 'waiting for a SPICE client to attach');
          lastWhy = 'no host';
          await pause();
        }
      } catch (err) {
        await closeAsync(fd).catch(() => {});
        throw err;
      }
      await closeAsync(fd).catch(() => {});
      await pause();
    }
  }

  /** The data stream of an attached port; see {@link VirtioPortDeviceOptions.stream}. */
  #streamOver(fd: number, initial: Buffer | undefined): Duplex {
    if (this.#stream !== 'threadpool') {
      const binding = pipeWrap();
      const why = binding instanceof Error ? `no libuv pipe handle: ${binding.message}` : unpollableReason(fd);
      if (!why) {
        this.#log.debug({ path: this.path, stream: 'poll' }, 'port stream: epoll on the main thread');
        return openPollPortStream(fd, { initial, log: this.#log });
      }
      if (this.#stream === 'poll') throw new GuestError(GuestErrorCode.DEVICE_OPEN, `cannot poll ${this.path}: ${why}`);
      this.#log.debug({ path: this.path, stream: 'threadpool', why }, 'port stream: thread-pool reads (epoll unavailable)');
    }
    return new FdPortStream(fd, { initial, maxIdleDelay: this.#maxIdleDelay, log: this.#log });
  }

  async #openDevice(): Promise<number> {
    const fd = await openAsync(this.path, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOCTTY);
    try {
      const st = await fstatAsync(fd);
      if (!st.isCharacterDevice()) {
        throw new GuestError(GuestErrorCode.BAD_DEVICE, `${this.path} is not a character device; pass the virtio port or unix:PATH`);
      }
      if (isatty(fd)) await this.#makeRaw();
      return fd;
    } catch (err) {
      await closeAsync(fd).catch(() => {});
      if (err instanceof GuestError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (RETRY_OPEN_CODES.has(code ?? '')) throw err;
      throw new GuestError(GuestErrorCode.DEVICE_OPEN, `cannot use ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  async #makeRaw(): Promise<void> {
    // Node's setRawMode keeps output post-processing (ONLCR turns \n into \r\n), so use stty's full raw mode.
    await execFileAsync('stty', ['-F', this.path, 'raw', '-echo', 'cs8', '-parenb']).catch((err: Error) => {
      throw new GuestError(GuestErrorCode.DEVICE_OPEN, `cannot switch the tty ${this.path} to raw mode with stty: ${err.message}`, { cause: err });
    });
  }
}

/** One non-blocking read: 0 = no host, EAGAIN = host attached and quiet, data = attached (keep the bytes). */
function checkHost(fd: number): Promise<HostCheck> {
  const buf = Buffer.allocUnsafe(64 * 1024);
  return new Promise((resolve, reject) => {
    read(fd, buf, 0, buf.length, null, (err, n) => {
      if (err?.code === 'EAGAIN') resolve({ kind: 'present' });
      else if (err && ['EIO', 'ENODEV', 'ENXIO'].includes(err.code ?? '')) resolve({ kind: 'gone' });
      else if (err) reject(new GuestError(GuestErrorCode.DEVICE_OPEN, `reading the port failed: ${err.message}`, { cause: err }));
      else if (n === 0) resolve({ kind: 'absent' });
      else resolve({ kind: 'present', data: Buffer.from(buf.subarray(0, n)) });
    });
  });
}
