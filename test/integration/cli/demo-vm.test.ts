import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../helpers/cli.js';
import { cliPath, repoRoot } from '../../helpers/paths.js';
import { requireTool } from '../../helpers/tools.js';

/** Command lines of the processes running now that contain `needle`. */
function processesWith(needle: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) found.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

test('demo --vm boots a guest whose shell reads the demo folder over the real chain, and poweroff ends it cleanly', { timeout: 240_000 }, async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86') || !requireTool(t, 'busybox', 'busybox-static')) return;
  // startCli (test/helpers/cli.ts) gives the child no stdin; this test types into the guest's console.
  const child = spawn(process.execPath, [cliPath, 'demo', '--vm'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const waitFor = async (re: RegExp, ms: number, from = 0): Promise<RegExpMatchArray> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = stdout.slice(from).match(re);
      if (m) return m;
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no ${re} in stdout within ${ms} ms (exit ${child.exitCode})\nstdout: ${stdout}\nstderr: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const started = Date.now();
  // The first run builds the image (a few seconds); boot under TCG takes 6-11 s, more on a loaded machine.
  const [, spicePort] = await waitFor(/SPICE on 127\.0\.0\.1:(\d+)/, 60_000);
  await waitFor(/root@spicedav-demo:~# /, 120_000);
  t.diagnostic(`prompt after ${Date.now() - started} ms`);

  const welcome = readFileSync(join(repoRoot, 'examples', 'share', 'welcome.txt'), 'utf8');
  const firstLine = welcome.split('\n')[0]!;
  // The guest listens before the banner; the host's SPICE link may still be coming up: retry a few times.
  let got = false;
  for (let i = 0; i < 5 && !got; i++) {
    const mark = stdout.length;
    child.stdin.write('curl -s http://localhost:9843/welcome.txt\n');
    got = await waitFor(new RegExp(firstLine.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 15_000, mark).then(() => true, () => false);
  }
  assert.ok(got, `the guest did not print welcome.txt\nstdout: ${stdout}\nstderr: ${stderr}`);

  child.stdin.write('poweroff\n');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 30_000)))]);
  clearTimeout(timer);
  assert.equal(code, 0, `exit ${code}\nstdout: ${stdout}\nstderr: ${stderr}`);
  assert.match(stdout, /the guest is off/);
  assert.deepEqual(processesWith(`port=${spicePort},addr=127.0.0.1`), [], 'QEMU is gone');
});

test('demo --vm without QEMU on PATH exits 3 naming the Debian packages', async () => {
  const bin = await mkdtemp(join(tmpdir(), 'spicedav-nopath-'));
  try {
    symlinkSync('/bin/sh', join(bin, 'sh'));
    const r = await runCli(['demo', '--vm'], { env: { PATH: bin }, timeoutMs: 30_000 });
    assert.equal(r.code, 3, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr + r.stdout, /apt-get install [^\n]*qemu-system-x86\b/);
    assert.match(r.stderr + r.stdout, /busybox-static/);
  } finally {
    await rm(bin, { recursive: true, force: true });
  }
});
