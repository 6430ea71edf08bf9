// A preload that records where a spicedav process's memory is, for the soak's guest memory study
// (docs/performance.md, "The guest's memory"). Load it into every process a bench starts:
//
//   NODE_OPTIONS="--import ./bench/memory-probe.mjs" npm run bench:soak -- --minutes 3
//
// Only the process whose command line has MEMORY_PROBE_COMMAND (default `guest`) records: every MEMORY_PROBE_MS
// (default 2000) it appends `seconds rss heapTotal heapUsed external arrayBuffers` (MiB, tab-separated) to
// /tmp/spicedav-memory-<command>-<pid>.tsv. With MEMORY_PROBE_GC=1 (and `--expose-gc` in NODE_OPTIONS) it runs a
// full collection before each sample, which shows how much of the memory is alive.
import { appendFileSync } from 'node:fs';

const command = process.env.MEMORY_PROBE_COMMAND ?? 'guest';
if (process.argv.includes(command)) {
  const out = `/tmp/spicedav-memory-${command}-${process.pid}.tsv`;
  const gc = process.env.MEMORY_PROBE_GC === '1' ? globalThis.gc : undefined;
  const start = Date.now();
  const mib = (bytes) => (bytes / 1048576).toFixed(1);
  setInterval(() => {
    gc?.();
    const m = process.memoryUsage();
    const row = [((Date.now() - start) / 1000).toFixed(0), mib(m.rss), mib(m.heapTotal), mib(m.heapUsed), mib(m.external), mib(m.arrayBuffers)];
    appendFileSync(out, `${row.join('\t')}\n`);
  }, Number(process.env.MEMORY_PROBE_MS ?? 2000)).unref();
}
