import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { arch } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { buildRoot, repoRoot } from '../helpers/paths.js';

// spicedav says `engines.node >= 20`, and users run it on Node's current LTS as much as on 20. The suite runs on
// the machine's Node; this test runs its unit, integration and interop tests again under the current LTS, which
// .ci/run unpacks into .cache/compat-node. It exists because Node 22 renamed a V8 flag the CLI set, and every
// start on Node 22 and later printed "unrecognized flag" while the whole suite passed on 20.

/** The other Node: SPICEDAV_COMPAT_NODE, or where .ci/run puts it. */
const otherNode = process.env.SPICEDAV_COMPAT_NODE ?? join(repoRoot, '.cache', 'compat-node', 'bin', 'node');
/** What runs again under it (the VM tests of test/e2e boot the machine's Node inside the guest: not repeated). */
const AREAS = ['unit/', 'integration/', 'interop/'];
/** Set in the inner run, so that this file never runs itself. */
const INNER = 'SPICEDAV_COMPAT_INNER';

function run(node: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

test("the unit, integration and interop tests pass under Node's current LTS too", { timeout: 14 * 60_000, skip: process.env[INNER] === '1' && 'inner run' }, async (t) => {
  if (!existsSync(otherNode)) {
    // .ci/run fetches the official x64 Linux build only (from the npm registry, the one registry reachable here).
    const why = `no second Node at ${relative(repoRoot, otherNode)} (.ci/run fetches it; or set SPICEDAV_COMPAT_NODE)`;
    if (process.env.CI === 'true' && arch() === 'x64') assert.fail(why);
    t.skip(why);
    return;
  }
  const version = await run(otherNode, ['--version'], process.env);
  assert.equal(version.code, 0, `${otherNode} runs`);
  assert.notEqual(version.output.trim(), process.version, 'the second Node is not the one running this suite');
  t.diagnostic(`under ${version.output.trim()} (this suite: ${process.version})`);

  // The same build and the same runner; children that start `node` by name or by process.execPath get it too.
  // Without the outer runner's NODE_TEST_CONTEXT, which would make the inner one report to it in its own format.
  const { NODE_TEST_CONTEXT: _outer, ...parent } = process.env;
  const env = {
    ...parent,
    [INNER]: '1',
    SPICEDAV_BUILD: relative(repoRoot, buildRoot),
    PATH: `${dirname(otherNode)}:${process.env.PATH ?? ''}`,
  };
  const inner = await run(otherNode, [join(repoRoot, 'scripts', 'run-tests.mjs'), ...AREAS], env);
  const summary = inner.output.slice(inner.output.lastIndexOf('ℹ tests'));
  const failures = inner.output.includes('✖ failing tests:') ? inner.output.slice(inner.output.indexOf('✖ failing tests:')) : inner.output.slice(-4000);
  assert.equal(inner.code, 0, `under ${version.output.trim()}:\n${failures}`);
  const count = (what: string): number => Number(new RegExp(`^ℹ ${what} (\\d+)$`, 'm').exec(summary)?.[1] ?? NaN);
  assert.equal(count('fail'), 0, summary);
  assert.ok(count('pass') > 100, `the inner run ran the tests:\n${summary}`);
  t.diagnostic(`${count('pass')} passed, ${count('skipped')} skipped of ${count('tests')}`);
});
