import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Options of {@link startBufferGc}. */
export interface BufferGcOptions {
  /** Buffer bytes above what the last collection left that trigger the next one (default 16 MiB). */
  threshold?: number;
  /** Milliseconds between checks (default 1000). */
  interval?: number;
  /** What a check reads (default: `process.memoryUsage().arrayBuffers`); for tests. */
  bufferBytes?: () => number;
  /** What a collection runs (default: V8's full collection, see {@link fullGc}); for tests. */
  collect?: () => void;
}

/** The running collector: how many collections it ran, and how to stop it. */
export interface BufferGc {
  readonly collections: number;
  stop(): void;
}

/**
 * Full collections for a long-running command whose garbage is mostly Buffers, once the Buffer memory has grown
 * by `threshold` since the last one. For the command-line program only, like v8-tuning.ts: a library must not
 * run its embedder's collector.
 *
 * Why: a relay like `spicedav guest` drops one Buffer per port or socket read. Those that live through two
 * scavenges (queued behind a slower reader for a few milliseconds, which the 1 MiB young generation of
 * v8-tuning.ts makes short) move to the old generation, where only a full collection frees them, and V8 starts
 * one for Buffer memory only after it has grown by about 64 MiB. malloc keeps most of what is then freed, so
 * the process stays at its highest point. In `npm run bench:soak` the guest went from 57 to 116–135 MiB within
 * three minutes, with 1 MiB of Buffers alive (a full collection every second showed it) and up to 60 MiB dead;
 * with this collector at 16 MiB it stayed at 63–83 MiB, with a collection about every 14 s, a few ms each
 * (a heap of 10 MiB). The check after a collection only notes what is left (still-queued Buffers and what the
 * concurrent sweeper has not yet released), so live Buffers above the threshold (a mux holding data for a
 * stalled reader) do not cause a collection per check.
 *
 * Returns undefined when this V8 gives no collector to call.
 */
export function startBufferGc(options: BufferGcOptions = {}): BufferGc | undefined {
  const collect = options.collect ?? fullGc();
  if (!collect) return undefined;
  const threshold = options.threshold ?? 16 * 1024 * 1024;
  const bufferBytes = options.bufferBytes ?? (() => process.memoryUsage().arrayBuffers);
  let floor: number | undefined = 0;
  let collections = 0;
  const timer = setInterval(() => {
    const bytes = bufferBytes();
    if (floor === undefined) floor = bytes;
    else if (bytes > floor + threshold) {
      collect();
      collections++;
      floor = undefined;
    }
  }, options.interval ?? 1000);
  timer.unref();
  return {
    get collections() {
      return collections;
    },
    stop: () => clearInterval(timer),
  };
}

/**
 * V8's full collection, without `--expose-gc` on the command line (which a bin's `#!/usr/bin/env node` cannot
 * pass): the flag set at run time exposes `gc` to contexts created after it, so a fresh one hands it over, and
 * this program's own global scope stays as it was. Undefined if that did not work.
 */
export function fullGc(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
  // Contexts made from now on (worker threads' among them) get no `gc` of their own.
  setFlagsFromString('--no-expose-gc');
  return typeof gc === 'function' ? (gc as () => void) : undefined;
}
