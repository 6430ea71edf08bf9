import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCli } from '../../helpers/cli.js';
import { repoRoot } from '../../helpers/paths.js';
import { tempDir } from '../../helpers/tmp.js';

// What `npm install spicedav` gives a user: the tarball `npm pack` makes from this checkout, installed into an
// empty project of its own, with nothing of the checkout around it (no devDependencies, no sources, no tests).

interface PackResult {
  filename: string;
  files: { path: string }[];
}

const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

function npm(args: string[], cwd: string): string {
  // npm's own configuration warnings go to stderr; only the JSON or the output asked for is on stdout.
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}

test('the npm package installs on its own and works: the bin, the library and its types', { timeout: 180_000 }, async (t) => {
  if (!existsSync(join(repoRoot, 'dist/src/index.js'))) {
    if (process.env.CI === 'true') assert.fail('dist/ is missing: npm test builds it before the tests');
    t.skip('dist/ is not built (npm run build)');
    return;
  }
  const dir = await tempDir(t);

  // Packed as built by `npm test`; without scripts, since `prepack` would rebuild dist/ under the other tests.
  const [pack] = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir], repoRoot)) as PackResult[];
  assert.ok(pack, 'npm pack printed its result');
  const files = pack.files.map((f) => f.path);
  for (const needed of ['package.json', 'README.md', 'LICENSE', 'dist/src/cli/index.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'examples/guest/spicedav-guest.service', 'examples/api/in-process.mjs']) {
    assert.ok(files.includes(needed), `the package has ${needed}`);
  }
  const foreign = files.filter((f) => /^dist\/(test|bench)\/|\.tsbuildinfo$|(?<!\.d)\.ts$/.test(f));
  assert.deepEqual(foreign, [], 'no tests, benchmarks, build state or TypeScript sources in the package');
  // Every compiled module has its source: a module left in dist/ by a renamed or deleted source would be
  // published and importable. `prepack` (run by npm pack and npm publish) builds from an empty dist/.
  const stale = files.filter((f) => f.startsWith('dist/') && f.endsWith('.js') && !existsSync(join(repoRoot, f.slice(5, -3) + '.ts')));
  assert.deepEqual(stale, [], 'no compiled module without a source (`npm run clean && npm run build` fixes a stale dist/)');

  // An empty project installs the tarball with the runtime dependencies only (from npm's cache when it has them).
  const app = join(dir, 'app');
  execFileSync('mkdir', [app]);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  npm(['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, pack.filename)], app);
  const installed = join(app, 'node_modules', 'spicedav');
  assert.ok(!existsSync(join(app, 'node_modules', 'typescript')), 'no devDependency was installed');

  // The bin, through the link npm made and its #! line, as a shell runs it.
  const bin = join(app, 'node_modules', '.bin', 'spicedav');
  assert.equal(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim(), version);

  // The documents come with it: --help names the installed README, and every file the README links to is there.
  const help = execFileSync(bin, ['--help'], { encoding: 'utf8' });
  const docsLine = `Documentation: ${join(installed, 'README.md')}, and docs/ beside it`;
  assert.ok(help.split('\n').includes(docsLine), `--help ends with "${docsLine}":\n${help}`);
  const links = [...readFileSync(join(installed, 'README.md'), 'utf8').matchAll(/\]\((?!https?:|#)([^)#\s]+)/g)].map((m) => m[1]!);
  assert.ok(links.some((l) => l.startsWith('docs/')), 'the README links to docs/');
  assert.deepEqual(links.filter((l) => !existsSync(join(installed, l))), [], 'every local link of the README resolves in the package');
  const share = join(dir, 'share');
  execFileSync('mkdir', [share]);
  await writeFile(join(share, 'hello.txt'), 'hello from the installed package\n');
  const serve = startCli(t, ['serve', share, '--port', '0'], { bin });
  const [, url] = await serve.waitFor(/at (http:\/\/127\.0\.0\.1:\d+\/)/);
  assert.equal(await (await fetch(`${url}hello.txt`)).text(), 'hello from the installed package\n');
  const propfind = await fetch(url!, { method: 'PROPFIND', headers: { Depth: '1' } });
  assert.equal(propfind.status, 207);
  assert.match(await propfind.text(), /<D:href>\/hello\.txt<\/D:href>/);
  assert.equal(await serve.stop('SIGINT'), 0);

  // The library, imported by name from the user's own code: the shipped example, run from the project.
  await copyFile(join(installed, 'examples/api/in-process.mjs'), join(app, 'example.mjs'));
  const example = execFileSync(process.execPath, ['example.mjs'], { cwd: app, encoding: 'utf8', timeout: 30_000 });
  assert.match(example, /^GET hello from the host$/m);
  assert.match(example, /^PUT 201$/m);

  // The types: a strict TypeScript consumer compiles against the shipped declarations, and a wrong option is
  // an error (the @ts-expect-error line would itself be an error if the import resolved to `any`).
  await writeFile(
    join(app, 'consumer.ts'),
    [
      "import { DavServer, MuxSession, SpicedavError, hasCode, type DavServerOptions, type MuxRole } from 'spicedav';",
      "const options: DavServerOptions = { root: '.', readOnly: true, stateDir: false };",
      'const server: DavServer = new DavServer(options);',
      "const role: MuxRole = 'host';",
      'export const used = [server, role, MuxSession, SpicedavError, hasCode];',
      '// @ts-expect-error the folder is a path, not a number',
      'export const wrong = new DavServer({ root: 42 });',
      '',
    ].join('\n'),
  );
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const typeRoots = join(repoRoot, 'node_modules', '@types');
  try {
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--typeRoots', typeRoots, 'consumer.ts'], { cwd: app, encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    assert.fail(`the consumer does not type-check against the package:\n${(err as { stdout?: string }).stdout ?? String(err)}`);
  }
});
