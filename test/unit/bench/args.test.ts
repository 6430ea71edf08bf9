/**
 * The bench scripts' command line (`bench/args.ts`): usage on --help, one clear line and exit code 2 on a bad option,
 * before any work starts (a misspelt option used to run the full 1 GiB benchmark with the defaults).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { buildRoot } from '../../helpers/paths.js';

const run = (script: string, ...args: string[]) => spawnSync(process.execPath, [join(buildRoot, 'bench', script), ...args], { encoding: 'utf8', timeout: 20_000 });

test('--help prints the usage and exits 0 without measuring', () => {
  for (const script of ['mux.js', 'dav.js', 'vm.js', 'soak.js', 'fuzz-mux.js']) {
    const r = run(script, '--help');
    assert.equal(r.status, 0, `${script}: ${r.stderr}`);
    assert.match(r.stdout, /^usage: npm run (bench|fuzz):/, script);
  }
});

test('an unknown option, a number that is not one, or a dash value without = exits 2 with what was wrong', () => {
  const cases: [string, string[], RegExp][] = [
    ['mux.js', ['--mb', '16'], /Unknown option '--mb'/],
    ['mux.js', ['--mib', 'lots'], /--mib takes a positive number, not 'lots'/],
    ['vm.js', ['--rounds', '0'], /--rounds takes a positive number, not '0'/],
    ['dav.js', ['--node-flags', '--single-threaded'], /argument is ambiguous/],
  ];
  for (const [script, args, message] of cases) {
    const r = run(script, ...args);
    assert.equal(r.status, 2, `${script} ${args.join(' ')}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /\n\nusage: /, 'the usage follows');
    assert.equal(r.stdout, '', 'nothing was measured');
  }
});
