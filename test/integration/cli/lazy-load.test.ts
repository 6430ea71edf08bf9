import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { buildRoot, cliPath } from '../../helpers/paths.js';
import { tempDir } from '../../helpers/tmp.js';

// Each command loads its subsystem when it runs, not when the CLI starts: `spicedav guest` boots with the VM,
// where every module costs startup time under emulation, and `serve` should not carry the SPICE client. The
// last test checks that no CommonJS package goes through import, which keeps the process's memory down
// (docs/performance.md, session 4).

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

// CommonJS packages (saxes, commander, fs-extra) are loaded with require(): importing one from ESM runs Node's
// CommonJS lexer over it, and the lexer stays resident (5 MiB for saxes alone; src/require-cjs.ts).
const LEXER = 'cjs-module-lexer';

test('the CLI and a working server load no CommonJS package through import (Node never runs its CJS lexer)', async (t) => {
  const dir = await tempDir(t);
  const list = join(dir, 'loaded.json');
  const preload = join(dir, 'record.mjs');
  writeFileSync(preload, `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(list)}, JSON.stringify(process.moduleLoadList)));\n`);
  for (const args of [['--help'], ['serve', '--help'], ['doctor', '--help']]) {
    execFileSync(process.execPath, ['--import', pathToFileURL(preload).href, cliPath, ...args], { stdio: 'ignore' });
    const loaded = JSON.parse(readFileSync(list, 'utf8')) as string[];
    assert.ok(loaded.length > 0);
    assert.deepEqual(loaded.filter((m) => m.includes(LEXER)), [], `spicedav ${args.join(' ')}`);
  }

  // The library at work: a logger, XML bodies (saxes), a collection COPY (fs-extra).
  const root = join(dir, 'share');
  mkdirSync(root);
  const script = `
    import { Writable } from 'node:stream';
    const { DavServer, createLogger } = await import(${JSON.stringify(pathToFileURL(join(buildRoot, 'src', 'index.js')).href)});
    const log = createLogger({ level: 'debug', format: 'json', destination: new Writable({ write: (c, e, cb) => cb() }) });
    const dav = new DavServer({ root: ${JSON.stringify(root)}, stateDir: false, log });
    const { port } = await dav.listen({ port: 0 });
    const url = (p) => 'http://127.0.0.1:' + port + p;
    const statuses = [];
    const send = async (method, p, headers = {}, body) => statuses.push((await fetch(url(p), { method, headers, body })).status);
    await send('MKCOL', '/a/');
    await send('PUT', '/a/f.txt', {}, 'x');
    await send('PROPPATCH', '/a/f.txt', {}, '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><z:p xmlns:z="urn:z">v</z:p></D:prop></D:set></D:propertyupdate>');
    await send('PROPFIND', '/a/', { Depth: '1' }, '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>');
    await send('COPY', '/a/', { Destination: url('/b/') });
    await dav.close();
    console.log(JSON.stringify({ statuses, lexer: process.moduleLoadList.filter((m) => m.includes(${JSON.stringify(LEXER)})) }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const { statuses, lexer } = JSON.parse(out.trim().split('\n').pop() as string) as { statuses: number[]; lexer: string[] };
  assert.deepEqual(statuses, [201, 201, 207, 207, 201], 'the requests did their work');
  assert.deepEqual(lexer, []);
});
