import { Duplex } from 'node:stream';

/**
 * One "link" over a longer-lived byte stream: the SPICE port stream lives as long as the webdav channel, but
 * each time the guest opens the port a fresh mux session must start at a frame boundary, and ending or
 * destroying that session must not close the channel. A LinkStream forwards both ways with backpressure
 * (reading pauses the inner stream while the link's consumer is full; a write completes when the inner stream
 * accepted it) until `detach()`, after which the inner stream's leftovers are discarded and the link ends.
 */
export class LinkStream extends Duplex {
  readonly #inner: Duplex;
  #attached = true;

  constructor(inner: Duplex, highWaterMark = 256 * 1024) {
    super({ highWaterMark, allowHalfOpen: false });
    this.#inner = inner;
    inner.on('data', this.#onData);
    inner.once('end', this.#onInnerGone);
    inner.once('close', this.#onInnerGone);
  }

  /** The link is over (port closed, channel lost): end it and stop forwarding. Idempotent. */
  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    this.#inner.off('data', this.#onData);
    this.#inner.off('end', this.#onInnerGone);
    this.#inner.off('close', this.#onInnerGone);
    // Bytes of the old link still buffered in the inner stream would break the next link's framing: let them
    // flow to nobody.
    this.#inner.resume();
    this.push(null);
    this.destroy();
  }

  override _read(): void {
    if (this.#attached) this.#inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }

  // Keep the chunks of one mux frame together so the port stream can send them as one SPICEVMC_DATA message.
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    if (!this.#attached || this.#inner.destroyed) return cb();
    this.#inner.cork();
    chunks.forEach(({ chunk }, i) => {
      // Only the last write's callback matters; errors are the inner stream's business (it reports its loss).
      if (i === chunks.length - 1) this.#inner.write(chunk, () => cb());
      else this.#inner.write(chunk);
    });
    this.#inner.uncork();
  }

  override _final(cb: (err?: Error | null) => void): void {
    // A mux session closing its transport ends this link only; there is no half-close on a SPICE port.
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (this.#attached) {
      this.#attached = false;
      this.#inner.off('data', this.#onData);
      this.#inner.off('end', this.#onInnerGone);
      this.#inner.off('close', this.#onInnerGone);
      this.#inner.resume();
    }
    cb(err);
  }

  readonly #onData = (chunk: Buffer): void => {
    if (!this.push(chunk)) this.#inner.pause();
  };

  readonly #onInnerGone = (): void => this.detach();
}
