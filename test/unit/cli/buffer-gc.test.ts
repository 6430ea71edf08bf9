import test from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { fullGc, startBufferGc } from '../../../src/cli/buffer-gc.js';

const MiB = 1024 * 1024;
const bufferBytes = (): number => process.memoryUsage().arrayBuffers;

test('dead Buffers that scavenges leave behind are collected once they pass the threshold', async (t) => {
  const gc = fullGc() as (options?: { type: 'minor' }) => void;
  assert.equal(typeof gc, 'function', 'this V8 hands over its full collection');
  assert.equal((globalThis as { gc?: unknown }).gc, undefined, 'without putting `gc` in the program\'s global scope');

  // Buffers that lived through two scavenges, as those queued behind a slow reader do, are in the old
  // generation: once dropped, further scavenges do not free them, and V8 would wait for ~64 MiB of them.
  let held: Buffer[] | undefined = Array.from({ length: 48 }, () => Buffer.alloc(MiB));
  gc({ type: 'minor' });
  gc({ type: 'minor' });
  const before = bufferBytes();
  held.length = 0;
  held = undefined;
  gc({ type: 'minor' });
  assert.ok(bufferBytes() >= before - 4 * MiB, `scavenges left the dead Buffers (${(bufferBytes() / MiB).toFixed(1)} MiB)`);

  const collector = startBufferGc({ threshold: 16 * MiB, interval: 10 }) as NonNullable<ReturnType<typeof startBufferGc>>;
  t.after(() => collector.stop());
  for (let i = 0; i < 200 && (collector.collections === 0 || bufferBytes() > before - 40 * MiB); i++) await sleep(10);
  assert.ok(collector.collections >= 1, 'the collector ran');
  assert.ok(bufferBytes() <= before - 40 * MiB, `the dead Buffers are gone: ${(bufferBytes() / MiB).toFixed(1)} MiB left of ${(before / MiB).toFixed(1)}`);
});

test('the threshold counts from what the last collection left, so live Buffers above it cost one collection, not one per check', async (t) => {
  // Buffer bytes at each check: growth to 20 (past 0 + 16), 30 left after the collection (the floor), then 40
  // (under 30 + 16, live data held), 50 (past it).
  const readings = [5, 20, 30, 40, 50, 50];
  const seen: number[] = [];
  const collectedAt: number[] = [];
  const collector = startBufferGc({
    threshold: 16,
    interval: 5,
    bufferBytes: () => {
      const r = readings[seen.length] ?? 50;
      seen.push(r);
      return r;
    },
    collect: () => collectedAt.push(seen.length - 1),
  }) as NonNullable<ReturnType<typeof startBufferGc>>;
  t.after(() => collector.stop());
  while (seen.length < readings.length) await sleep(5);
  collector.stop();
  assert.deepEqual(collectedAt.slice(0, 2), [1, 4], 'collected at 20 and at 50, not at 30 (the floor) nor 40');
  assert.equal(collector.collections, collectedAt.length);
});
