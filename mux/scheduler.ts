import type { Writable } from 'node:stream';

/** Something with frames to send: in practice one channel's outbound queue. */
export interface FrameSource {
  /**
   * Writes exactly one frame (header, then payload if any) to `transport` and completes whatever that frame
   * finishes (write callbacks, freeing the id after a close frame). Returns true if more frames remain.
   */
  sendNext(transport: Writable): boolean;
}

/**
 * The single writer of the transport. Channels with something to send wait in a ready ring; each turn takes
 * one frame from the channel at the head and moves it to the back if it has more, so frames of concurrent
 * clients interleave round-robin and a bulk upload cannot starve an interactive request (protocol.md §a.8
 * describes the opposite, a FIFO per client, as what the reference daemons do).
 *
 * Backpressure: the loop stops as soon as the transport reports `writableNeedDrain` (its `write()` returned
 * false) and restarts on `'drain'`. Channels hold their write callbacks until their frames are handed over
 * here, so a stalled transport stops every writer upstream instead of buffering in the mux.
 *
 * Each run is corked, so the frames of one run leave as one `writev` when the transport implements it.
 */
export class FrameScheduler {
  readonly #transport: Writable;
  /** Insertion-ordered, so "delete then add" moves a source to the back of the ring. */
  readonly #ready = new Set<FrameSource>();
  #running = false;
  #stopped = false;

  constructor(transport: Writable) {
    this.#transport = transport;
    transport.on('drain', this.#onDrain);
  }

  /** True when no source is waiting to send. */
  get idle(): boolean {
    return this.#ready.size === 0;
  }

  /** Puts `source` in the ring (if not there yet) and sends what the transport will take now. */
  schedule(source: FrameSource): void {
    if (this.#stopped) return;
    this.#ready.add(source);
    this.#run();
  }

  /** Takes `source` out of the ring, e.g. because its channel was destroyed and its frames dropped. */
  unschedule(source: FrameSource): void {
    this.#ready.delete(source);
  }

  /** Stops for good (the transport is gone): forgets every source and ignores later schedule() calls. */
  stop(): void {
    this.#stopped = true;
    this.#ready.clear();
    this.#transport.off('drain', this.#onDrain);
  }

  readonly #onDrain = (): void => {
    this.#run();
  };

  #run(): void {
    // Re-entry happens: a write callback or an in-memory transport delivering synchronously can schedule more
    // frames while we are inside the loop. Those calls only add to the ring; this loop picks them up, so the
    // stack never grows with the number of frames.
    if (this.#running) return;
    this.#running = true;
    const transport = this.#transport;
    try {
      while (!this.#stopped && this.#ready.size > 0 && !transport.writableNeedDrain && transport.writable) {
        transport.cork();
        try {
          for (const source of this.#ready) {
            this.#ready.delete(source);
            if (source.sendNext(transport) && !this.#stopped) this.#ready.add(source);
            // `writable` turns false when the transport is ended or destroyed: its write() then fails without
            // ever setting writableNeedDrain, so without this check a busy source would spin here forever.
            if (this.#stopped || transport.writableNeedDrain || !transport.writable) break;
          }
        } finally {
          transport.uncork();
        }
      }
    } finally {
      this.#running = false;
    }
  }
}
