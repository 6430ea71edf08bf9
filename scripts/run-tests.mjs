#!/usr/bin/env node
// Runs node's test runner over the built tests (dist/test/**/*.test.js).
// `npm test` builds first (pretest); `node scripts/run-tests.mjs mux dav/put` runs only the test files whose
// path contains one of the given words, which is what you want while working on one part.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
// SPICEDAV_BUILD points at another build directory inside the checkout (e.g. .build/mux), so that several
// people can build and test different parts at once without racing on dist/.
const buildDir = process.env.SPICEDAV_BUILD ? join(root, process.env.SPICEDAV_BUILD.replace(root, '')) : join(root, 'dist');
const testDir = join(buildDir, 'test');

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

let files;
try {
  files = walk(testDir);
} catch {
  console.error(`no built tests in ${relative(process.cwd(), testDir)}: run \`npm run build\` first`);
  process.exit(2);
}
const filters = process.argv.slice(2);
if (filters.length) files = files.filter((f) => filters.some((w) => relative(testDir, f).includes(w)));
if (!files.length) {
  console.error(`no test file matches ${filters.join(' ')}`);
  process.exit(2);
}

// Test files run one at a time by default: several of them boot QEMU or run litmus, and this project's
// machines have two cores. TEST_CONCURRENCY raises it for the pure unit tests.
const concurrency = process.env.TEST_CONCURRENCY ?? '1';
// No test may hang the run. Node 20's runner applies --test-timeout to each test *file* as a whole, and a test's
// own { timeout } cannot extend it (tests without one are bounded by it alone), so this is sized for the longest
// file, with room: the Node LTS re-run of test/compat (about 5 minutes, and growing with the suite). A hang still
// ends the run within it, which keeps CI under its limit.
const timeout = process.env.TEST_TIMEOUT ?? String(15 * 60_000);
const args = ['--enable-source-maps', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${timeout}`, '--test-reporter=spec', ...files];
// The servers the tests start keep dead properties and locks under $XDG_STATE_HOME/spicedav unless told
// otherwise: point it at a directory of this run's own, so a run neither reads nor litters the user's.
const stateHome = mkdtempSync(join(tmpdir(), 'spicedav-test-state-'));
const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root, env: { ...process.env, XDG_STATE_HOME: stateHome } });
rmSync(stateHome, { recursive: true, force: true });
process.exit(r.status ?? 1);
