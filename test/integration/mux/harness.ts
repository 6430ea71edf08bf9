// Helpers shared by the mux integration tests: session pairs over in-memory transports, a scripted raw peer
// that speaks frames directly, and bounded waits (every wait in these tests has a deadline).
import { once, type EventEmitter } from 'node:events';
import { pipeline, Transform, type Duplex, type Readable } from 'node:stream';
import { duplexPair } from '../../helpers/duplex-pair.js';
import { encodeClose, encodeFrame, FrameDecoder, MuxSession, type MuxSessionOptions } from '../../../mux/index.js';

/** Rejects with `what` if `p` has not settled within `ms`. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The first `event` of `emitter`, within `ms`. */
export function waitFor<T extends unknown[] = unknown[]>(emitter: EventEmitter, event: string, ms = 5000): Promise<T> {
  return within(ms, `'${event}'`, once(emitter, event) as Promise<T>);
}

export { until } from '../../helpers/wait.js';

/** Everything `stream` yields until its end, within `ms`. */
export function readAll(stream: Readable, ms = 10_000): Promise<Buffer> {
  const parts: Buffer[] = [];
  stream.on('data', (d: Buffer) => parts.push(d));
  return within(
    ms,
    'stream end',
    new Promise<Buffer>((resolve, reject) => {
      stream.once('end', () => resolve(Buffer.concat(parts)));
      stream.once('error', reject);
    }),
  );
}

/** Deterministic test bytes: a different pattern per `seed`, so swapped or shifted data is detected. */
export function pattern(seed: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

type SessionExtras = Omit<MuxSessionOptions, 'role'>;

/** A host-role and a guest-role session joined by `duplexPair()`. */
export function sessionPair(
  hostOptions: SessionExtras = {},
  guestOptions: SessionExtras = {},
  highWaterMark?: number,
): { host: MuxSession; guest: MuxSession; hostSide: Duplex; guestSide: Duplex } {
  const [hostSide, guestSide] = duplexPair(highWaterMark);
  return {
    host: new MuxSession(hostSide, { ...hostOptions, role: 'host' }),
    guest: new MuxSession(guestSide, { ...guestOptions, role: 'guest' }),
    hostSide,
    guestSide,
  };
}

/** A seeded xorshift generator: `rand(n)` is an integer in [0, n). The same seed gives the same sequence. */
export function random(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

/**
 * Two Duplex ends joined through re-chunking transforms: every chunk written is cut at pseudo-random points
 * (from `seed`), so the far side's decoder sees frames split everywhere, as SPICEVMC_DATA messages split them.
 */
export function choppedPair(seed: number): [Duplex, Duplex] {
  const [a, a2] = duplexPair();
  const [b2, b] = duplexPair();
  const rand = random(seed);
  const chopper = (): Transform =>
    new Transform({
      transform(chunk: Buffer, _enc, cb) {
        let off = 0;
        while (off < chunk.length) {
          const n = 1 + rand(Math.min(chunk.length - off, rand(4) === 0 ? 7 : 70_000));
          this.push(chunk.subarray(off, off + n));
          off += n;
        }
        cb();
      },
    });
  const ignore = (): void => {};
  pipeline(a2, chopper(), b2, ignore);
  pipeline(b2, chopper(), a2, ignore);
  return [a, b];
}

/** One decoded frame as seen by a {@link RawPeer}. */
export interface SeenFrame {
  id: bigint;
  payload: Buffer;
}

/**
 * The far end of a session's transport played by the test: it writes hand-made frames and records every frame
 * the session sends, so tests can assert on exact wire behaviour (who sends size-0 when, which ids are used).
 */
export class RawPeer {
  readonly frames: SeenFrame[] = [];
  readonly #side: Duplex;

  constructor(side: Duplex) {
    this.#side = side;
    const decoder = new FrameDecoder((id, payload) => this.frames.push({ id, payload: Buffer.from(payload) }));
    side.on('data', (chunk: Buffer) => decoder.push(chunk));
  }

  /** Sends `data` for `id` (split into frames as needed). */
  send(id: bigint, data: string | Buffer): void {
    for (const b of encodeFrame(id, typeof data === 'string' ? Buffer.from(data) : data)) this.#side.write(b);
  }

  /** Sends a size-0 frame for `id`. */
  close(id: bigint): void {
    this.#side.write(encodeClose(id));
  }

  /** Concatenated payloads received for `id` so far. */
  dataFor(id: bigint): string {
    return Buffer.concat(this.frames.filter((f) => f.id === id).map((f) => f.payload)).toString();
  }

  /** Number of size-0 frames received for `id`. */
  closesFor(id: bigint): number {
    return this.frames.filter((f) => f.id === id && f.payload.length === 0).length;
  }

  /** Lets queued writes and deliveries settle (a few macrotask turns). */
  static async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }
}
