import type { DavServer, Transfer } from '../../dav/index.js';
import { formatBytes, formatDuration, formatRate } from './format.js';
import { PROGRESS_MIN_BYTES, type TransferView } from './status.js';

/**
 * Follows a DavServer's 'transfer' events: the ones in flight feed the status display's progress bars, and
 * each large one that ends becomes an event line ("↑ PUT /big.iso 1.0 GB in 12s, 85 MB/s").
 */
export class TransferTracker {
  #live = new Map<Transfer, number>();
  /** Bytes of finished transfers, so totals include them (serve mode has no mux counters). */
  #doneIn = 0;
  #doneOut = 0;

  constructor(dav: DavServer, onLine: (line: string) => void) {
    dav.on('transfer', (t: Transfer) => {
      const startedAt = Date.now();
      this.#live.set(t, startedAt);
      t.once('end', (err?: Error) => {
        this.#live.delete(t);
        if (t.direction === 'in') this.#doneIn += t.bytes;
        else this.#doneOut += t.bytes;
        if (t.bytes < PROGRESS_MIN_BYTES && !err) return;
        const secs = (Date.now() - startedAt) / 1000;
        const arrow = t.direction === 'in' ? '↑' : '↓';
        onLine(
          err
            ? `✖ ${t.method} ${t.path} stopped after ${formatBytes(t.bytes)}: ${err.message}`
            : `${arrow} ${t.method} ${t.path} ${formatBytes(t.bytes)} in ${formatDuration(secs)}, ${formatRate(t.bytes / Math.max(secs, 0.001))}`,
        );
      });
    });
  }

  /** Transfers in flight, oldest first. */
  views(): TransferView[] {
    return [...this.#live].map(([t, startedAt]) => ({
      method: t.method,
      path: t.path,
      direction: t.direction,
      bytes: t.bytes,
      total: t.total,
      startedAt,
    }));
  }

  /** Body bytes moved so far, finished and in flight. */
  totals(): { bytesIn: number; bytesOut: number } {
    let bytesIn = this.#doneIn;
    let bytesOut = this.#doneOut;
    for (const t of this.#live.keys()) {
      if (t.direction === 'in') bytesIn += t.bytes;
      else bytesOut += t.bytes;
    }
    return { bytesIn, bytesOut };
  }
}
