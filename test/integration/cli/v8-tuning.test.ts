import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cliPath } from '../../helpers/paths.js';
import { tempDir } from '../../helpers/tmp.js';

// The V8 settings the `spicedav` process makes at its start (src/cli/v8-tuning.ts). Each test runs the CLI with
// a preloaded module whose exit handler does the measuring, after the CLI's main() ran.

/** Run `spicedav --version` with `code` as the body of an exit handler that writes its result to a file. */
async function afterCli(t: Parameters<typeof tempDir>[0], code: string, nodeFlags: string[] = []): Promise<string> {
  const dir = await tempDir(t);
  const out = join(dir, 'result');
  const preload = join(dir, 'measure.mjs');
  writeFileSync(
    preload,
    `import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';
process.on('exit', () => {
  const result = (() => { ${code} })();
  writeFileSync(${JSON.stringify(out)}, String(result));
});
`,
  );
  const run = spawnSync(process.execPath, [...nodeFlags, '--import', pathToFileURL(preload).href, cliPath, '--version'], { encoding: 'utf8' });
  // V8 prints "unrecognized flag" for a flag it does not have (it was renamed in V8 12, Node 22): nothing on
  // stderr means every flag the CLI set exists in this Node.
  assert.equal(run.stderr, '', 'the CLI starts without a word on stderr');
  assert.equal(run.status, 0);
  return readFileSync(out, 'utf8');
}

test("the CLI keeps V8's young generation at its starting size, however much short-lived data goes through", async (t) => {
  // A stream of objects that each survive a few scavenges, as a long transfer makes. Without the cap V8 grows
  // the young generation to 32 MiB here; with it, it stays at 2 (two 1 MiB semi-spaces).
  const size = await afterCli(
    t,
    `const keep = [];
  for (let i = 0; i < 300000; i++) { keep.push(new Array(64).fill(i)); if (keep.length > 3000) keep.shift(); }
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;`,
  );
  assert.ok(Number(size) <= 4 * 1024 * 1024, `young generation ${size} bytes`);
});

// V8 12 (Node 22) replaced the byte budget by call counts, whose default the CLI keeps (src/cli/v8-tuning.ts).
const countsCalls = Number.parseInt(process.versions.v8, 10) >= 12 && `V8 ${process.versions.v8} tiers up by call count; the CLI keeps its default`;

test('the CLI hands hot code to the optimizing compiler early: a function called 2,000 times is optimized', { skip: countsCalls }, async (t) => {
  // With V8's default budget this function needs about 20,000 calls (checked below, so the test shows the
  // CLI's setting and not V8's default). %GetOptimizationStatus bit 4 (16) = optimized; compiling on the main
  // thread makes the result independent of when a background compile job ends.
  const code = `function f(x) { return (x * 2 + 1) | 0; }
  let s = 0;
  for (let i = 0; i < 2000; i++) s += f(i);
  return s > 0 && (%GetOptimizationStatus(f) & 16) !== 0;`;
  assert.equal(await afterCli(t, code, ['--allow-natives-syntax', '--no-concurrent-recompilation']), 'true', 'optimized after 2,000 calls in the CLI');
  const plain = join(await tempDir(t), 'plain.mjs');
  writeFileSync(plain, `console.log((() => { ${code} })());`);
  const baseline = execFileSync(process.execPath, ['--allow-natives-syntax', '--no-concurrent-recompilation', plain], { encoding: 'utf8' }).trim();
  assert.equal(baseline, 'false', 'a plain node process does not optimize it that early (else this test proves nothing)');
});
