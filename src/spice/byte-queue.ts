/**
 * Bytes received but not yet parsed, kept as the list of chunks the socket delivered plus a running length,
 * so that a message split over many TCP reads is joined only once, when all of it is there
 * (the `consume(n)` idea of websockets/ws `lib/receiver.js`).
 */
export class ByteQueue {
  #chunks: Buffer[] = [];
  #length = 0;

  /** Bytes currently queued. */
  get length(): number {
    return this.#length;
  }

  /** Append a chunk; empty chunks are ignored. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /**
   * Remove and return the first `n` bytes (the caller checked `length >= n`). A view into the head chunk when
   * it holds all `n` bytes, a copy only when they span chunks.
   */
  consume(n: number): Buffer {
    if (n > this.#length) throw new RangeError(`consume(${n}) with ${this.#length} bytes queued`);
    this.#length -= n;
    const head = this.#chunks[0];
    if (head === undefined || n === 0) return Buffer.alloc(0);
    if (n === head.length) return this.#chunks.shift() as Buffer;
    if (n < head.length) {
      this.#chunks[0] = head.subarray(n);
      return head.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0] as Buffer;
      const take = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, take);
      filled += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    return out;
  }

  /** Drop everything queued (a connection reset). */
  clear(): void {
    this.#chunks = [];
    this.#length = 0;
  }
}
