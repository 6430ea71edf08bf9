import test from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { SCAVENGE_EVERY, UploadMemory } from '../../../dav/storage/upload-memory.js';

/** Young-generation collections that happen while `f` runs (observed through perf_hooks, not assumed). */
async function scavengesDuring(f: () => void): Promise<number> {
  let n = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) n++;
  });
  obs.observe({ entryTypes: ['gc'] });
  f();
  await new Promise((r) => setTimeout(r, 50)); // gc entries are delivered asynchronously
  obs.disconnect();
  return n;
}

test('an upload scavenges once per SCAVENGE_EVERY bytes, not per chunk', async () => {
  const memory = new UploadMemory();
  const chunk = 64 * 1024;
  const below = await scavengesDuring(() => {
    for (let sent = chunk; sent < SCAVENGE_EVERY; sent += chunk) memory.add(chunk);
  });
  assert.ok(below <= 1, `no scavenge of ours before the first SCAVENGE_EVERY bytes (V8 may run one), saw ${below}`);
  const four = await scavengesDuring(() => {
    for (let sent = 0; sent < 4 * SCAVENGE_EVERY; sent += chunk) memory.add(chunk);
  });
  assert.ok(four >= 4 && four <= 6, `4 scavenges for 4 × SCAVENGE_EVERY bytes (V8 may add one), saw ${four}`);
});
