/**
 * The real litmus 0.13 (neon's WebDAV compliance suite), all five suites — basic, copymove, props, locks,
 * http — against DavServer on port 0: 104 of 104 must pass with no failure and no warning. The server logs
 * each request's X-Litmus header at debug level, so a failing case maps straight to its requests.
 */
import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DavServer } from '../../dav/index.js';
import { requireTool } from '../helpers/tools.js';
import { mountExfat, tempDir } from '../helpers/tmp.js';
import { request } from '../integration/dav/harness.js';

/** Run a program to completion (asynchronously: the server under test lives in this process). */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      // litmus redraws its progress line with \r; keep what a terminal would show.
      resolve(out.split('\n').map((l) => l.slice(l.lastIndexOf('\r') + 1)).join('\n'));
    });
  });
}

test('litmus: all five suites, 104/104 passed, 0 failed, 0 warnings', { timeout: 600_000 }, async (t) => {
  if (!requireTool(t, 'litmus')) return;
  const root = join(await tempDir(t, 'spicedav-litmus-'), 'share');
  await mkdir(root);
  await litmus(t, root);
});

test('litmus on a share that ignores case and has no hard links (exFAT, as USB sticks): 104/104', { timeout: 600_000 }, async (t) => {
  if (!requireTool(t, 'litmus')) return;
  const mount = await mountExfat(t);
  if (!mount) return;
  try {
    await mkdir(join(mount.dir, 'share'));
    await litmus(t, join(mount.dir, 'share'));
  } finally {
    mount.unmount();
  }
});

/** Serve `root` with a DavServer and run all five litmus suites against it: 104 passed, no failure, no warning. */
async function litmus(t: TestContext, root: string): Promise<void> {
  // litmus writes its logs into its working folder; the server's state lives there too, outside the share.
  const work = await tempDir(t, 'spicedav-litmus-');
  const stateDir = join(work, 'state');
  const server = new DavServer({ root, stateDir });
  const { port } = await server.listen({ port: 0 });
  try {
    assert.equal((await request(port, 'MKCOL', '/litmus/')).status, 201);
    const out = await run('litmus', ['-k', `http://127.0.0.1:${port}/litmus/`], work, 540_000);
    const suites = [...out.matchAll(/<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed/g)].map((m) => ({
      suite: m[1],
      run: Number(m[2]),
      passed: Number(m[3]),
      failed: Number(m[4]),
    }));
    const failures = out.split('\n').filter((l) => /FAIL|WARNING|SKIPPED/.test(l));
    for (const f of failures) t.diagnostic(f.trim());
    for (const s of suites) t.diagnostic(`${s.suite}: ${s.passed}/${s.run} passed, ${s.failed} failed`);
    assert.deepEqual(suites.map((s) => s.suite), ['basic', 'copymove', 'props', 'locks', 'http'], out.slice(-2000));
    const passed = suites.reduce((n, s) => n + s.passed, 0);
    const failed = suites.reduce((n, s) => n + s.failed, 0);
    const warnings = (out.match(/WARNING:/g) ?? []).length;
    assert.equal(failed, 0, failures.join('\n'));
    assert.equal(passed, 104, failures.join('\n'));
    assert.equal(warnings, 0, failures.join('\n'));
    assert.equal((await request(port, 'OPTIONS', '/')).status, 200, 'the server still answers after litmus');
  } finally {
    await server.close();
  }
}
