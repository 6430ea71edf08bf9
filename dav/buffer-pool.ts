/**
 * Reusable I/O buffers for GET bodies. Reading a big file into fresh buffers leaves each one to the garbage
 * collector, which V8 only runs once tens of MB of such memory piled up; the process's RSS follows. A GET
 * instead borrows two buffers (one being read into, one being written out) and returns them, so a 1 GiB download
 * costs 2 buffers, not 1,024.
 */
export class BufferPool {
  readonly #size: number;
  readonly #max: number;
  readonly #free: Buffer[] = [];
  #out = 0;

  /** Buffers of `size` bytes; at most `max` are kept when returned. */
  constructor(size: number, max: number) {
    this.#size = size;
    this.#max = max;
  }

  /** The size of every buffer. */
  get size(): number {
    return this.#size;
  }

  /** Buffers currently lent out (two per download in progress). */
  get inUse(): number {
    return this.#out;
  }

  /** Borrow a buffer. */
  take(): Buffer {
    this.#out++;
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#size);
  }

  /** Return a buffer; `reusable` false when it may still be referenced (a failed write) and must be dropped. */
  give(buf: Buffer, reusable = true): void {
    this.#out--;
    if (reusable && this.#free.length < this.#max && buf.length === this.#size) this.#free.push(buf);
  }
}
