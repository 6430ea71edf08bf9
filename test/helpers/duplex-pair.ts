import { Duplex } from 'node:stream';

/**
 * Two in-memory Duplex streams joined back to back: what one writes, the other reads. Backpressure is real:
 * a write callback completes only when the peer's readable side accepted the chunk (push() returned true) or,
 * if it refused, when the peer asks for more (_read). `highWaterMark` bounds what sits in each direction.
 */
export function duplexPair(highWaterMark = 64 * 1024): [Duplex, Duplex] {
  class Side extends Duplex {
    peer!: Side;
    #pending: (() => void) | null = null;
    constructor() {
      super({ highWaterMark, allowHalfOpen: true });
    }
    override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
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
      // Losing one end of a pipe is seen by the other end as an abrupt close.
      if (!this.peer.destroyed) this.peer.destroy(err ?? undefined);
      const pending = this.#pending;
      this.#pending = null;
      pending?.();
      cb(err);
    }
  }
  const a = new Side();
  const b = new Side();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
