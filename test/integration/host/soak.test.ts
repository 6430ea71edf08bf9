/**
 * A short run of `npm run bench:soak`: the two-process chain (guest on a unix socket, share --qemu-socket) with the
 * share SIGKILLed every few seconds, under cut uploads, small-file traffic and a held lock. Proves the soak itself
 * works, and, end to end over the mux, that a restarted share keeps the guest's lock and never stores a cut upload.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { buildRoot } from '../../helpers/paths.js';

test('soak: the share killed again and again loses no byte, no whole file and no lock', { timeout: 120_000 }, async () => {
  const child = spawn(process.execPath, [join(buildRoot, 'bench', 'soak.js'), '--minutes', '0.35', '--kill-every', '6', '--size', '256'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, out);
  const kills = Number(/share killed (\d+) times/.exec(out)?.[1]);
  assert.ok(kills >= 2, out);
  for (const workload of ['atomic', 'traffic', 'lock']) {
    const [, ok, violations] = new RegExp(`${workload}\\s+(\\d+) ok .* (\\d+) violations`).exec(out) ?? [];
    assert.ok(Number(ok) > 0, `${workload} made progress: ${out}`);
    assert.equal(violations, '0', out);
  }
});
