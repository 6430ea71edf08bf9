import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { buildRoot, cliPath } from '../../helpers/paths.js';
import { tempDir } from '../../helpers/tmp.js';

// Each command loads its subsystem when it runs, not when the CLI starts: `spicedav guest` boots with the VM,
// where every module costs startup time under emulation, and `serve` should not carry the SPICE client.

/** The build's modules (relative to the build root) that `spicedav ARGS` loads, recorded by a resolve hook. */
async function modulesLoadedBy(t: Parameters<typeof tempDir>[0], args: string[]): Promise<string[]> {
  const dir = await tempDir(t);
  const log = join(dir, 'modules.log');
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(hooks, `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (r.url.startsWith('file:')) appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}
`);
  const register = join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  writeFileSync(log, '');
  execFileSync(process.execPath, ['--import', pathToFileURL(register).href, cliPath, ...args], { stdio: 'ignore' });
  const ours = readFileSync(log, 'utf8').split('\n').filter((u) => u.startsWith(pathToFileURL(buildRoot).href));
  return [...new Set(ours.map((u) => relative(buildRoot, fileURLToPath(u))))];
}

test('--help and --version load no subsystem: dav, the SPICE client, host, guest proxy, VM tools, doctor', async (t) => {
  const heavy = /^(dav|mux)\/|^src\/(spice|host|vm|doctor\/(?!sockets|proc))|^src\/guest\/(?!defaults|port-device)/;
  for (const args of [['--version'], ['--help'], ['guest', '--help'], ['serve', '--help'], ['share', '--help']]) {
    const loaded = await modulesLoadedBy(t, args);
    assert.ok(loaded.includes('src/cli/index.js'), `the hook saw the CLI itself (${args.join(' ')})`);
    assert.deepEqual(loaded.filter((m) => heavy.test(m)), [], `spicedav ${args.join(' ')} loaded them`);
  }
});
