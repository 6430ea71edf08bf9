import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../helpers/paths.js';

// The example imports 'spicedav' by name, as users do: Node resolves the package to itself through
// package.json "exports", i.e. the dist/ build that `npm test` makes first.
test('examples/api/in-process.mjs runs: GET, PUT and PROPFIND through the whole chain', (t) => {
  if (!existsSync(join(repoRoot, 'dist/src/index.js'))) {
    if (process.env.CI === 'true') assert.fail('dist/ is missing: npm test builds it before the tests');
    t.skip('dist/ is not built (npm run build)');
    return;
  }
  const r = spawnSync(process.execPath, [join(repoRoot, 'examples/api/in-process.mjs')], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^GET hello from the host$/m);
  assert.match(r.stdout, /^PUT 201$/m);
  assert.match(r.stdout, /^PROPFIND \/ \/from-guest\.txt \/hello\.txt$/m);
  assert.match(r.stdout, /^bytes through the mux: [1-9]\d* in, [1-9]\d* out$/m);
});
