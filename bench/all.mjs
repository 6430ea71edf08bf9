#!/usr/bin/env node
// `npm run bench`: every benchmark in turn (mux, dav, vm), each printing its figures and the ratios against
// the peers it measured in the same run. One at a time: this machine has two cores and the figures are only
// comparable when nothing else runs. Pass names to run a subset: `node bench/all.mjs mux dav`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const all = ['mux', 'dav', 'vm'];
const chosen = process.argv.slice(2).length ? process.argv.slice(2) : all;
let failed = 0;
for (const name of chosen) {
  const script = `${root}dist/bench/${name}.js`;
  if (!existsSync(script)) {
    console.error(`bench ${name}: ${script} is missing (run \`npm run build\`)`);
    failed++;
    continue;
  }
  console.log(`\n=== bench:${name} ===`);
  const r = spawnSync(process.execPath, [script], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
