/**
 * Random requests, made of every method and of pieces of hostile paths, headers and bodies, against one share
 * with a link leading out of it: the server answers each one with a deliberate status (never 500, the status of
 * an error nobody handled), stays up, and leaves the canary beside the share untouched and unread. Under each
 * symlink policy, and read-only, where no write method may succeed and the share must not change at all.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import type { DavServerOptions } from '../../../dav/index.js';
import { startServer } from './harness.js';

const SECRET = 'CANARY-SECRET-51c9';

const pathPiece = fc.constantFrom('/', '//', '.', '..', '%2e', '%2e%2e', '%2f', '%5c', '%00', '%', '%zz', '%c0%ae', 'f.txt', 'dir', 'sub', 'g.txt', 'out', 'canary.txt', 'new', '?q', '#', ';');
const xmlBody = fc.constantFrom(
  '',
  '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
  '<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><x:y xmlns:x="urn:x"/></D:prop></D:propfind>',
  '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>',
  '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:y xmlns:x="urn:x">v</x:y></D:prop></D:set><D:remove><D:prop><D:getetag/></D:prop></D:remove></D:propertyupdate>',
  '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>me</D:owner></D:lockinfo>',
  '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope></D:lockinfo>',
  '<D:propfind xmlns:D="DAV:"><D:prop>',
  '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><D:propfind xmlns:D="DAV:"><D:prop>&e;</D:prop></D:propfind>',
  '<a><b></a>',
  'plain bytes \u0000\u00ff',
);

const WRITES = new Set(['PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE', 'PROPPATCH', 'LOCK', 'UNLOCK']);

/** Every entry below `dir` with its type, size, mtime and (for files) content: what "nothing changed" compares. */
async function snapshot(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const p = join(rel, name);
    const st = await lstat(join(dir, p));
    out.push(`${p} ${st.mode} ${st.size} ${st.mtimeMs} ${st.isFile() ? await readFile(join(dir, p), 'latin1') : ''}`);
    if (st.isDirectory()) out.push(...(await snapshot(dir, p)));
  }
  return out;
}

const configurations: [string, Partial<DavServerOptions>][] = [
  ['symlinks never followed', {}],
  ['symlinks followed inside', { followSymlinks: 'inside' }],
  ['read-only', { readOnly: true }],
];

for (const [label, options] of configurations) {
  test(`property: random requests get deliberate answers, the server stays up, the canary outside is untouched (${label})`, async (t) => {
    const h = await startServer(t, options);
    await writeFile(join(h.outside, 'canary.txt'), SECRET);
    await writeFile(join(h.root, 'f.txt'), 'file');
    await mkdir(join(h.root, 'dir', 'sub'), { recursive: true });
    await writeFile(join(h.root, 'dir', 'g.txt'), 'g');
    await symlink('../outside', join(h.root, 'out'));
    const before = await snapshot(h.root);
    const target = fc.array(pathPiece, { maxLength: 6 }).map((pieces) => `/${pieces.join('')}`);
    const request = fc.record({
      method: fc.constantFrom('GET', 'HEAD', 'PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE', 'PROPFIND', 'PROPPATCH', 'LOCK', 'UNLOCK', 'OPTIONS', 'POST', 'TRACE', 'BREW'),
      path: target,
      headers: fc.record(
        {
          depth: fc.constantFrom('0', '1', 'infinity', '2', '', 'x'),
          destination: fc.oneof(target.map((p) => `http://127.0.0.1:${h.port}${p}`), fc.constantFrom('http://elsewhere.example/x', '/dir/new', '../x', '%%%', '')),
          overwrite: fc.constantFrom('T', 'F', 'x'),
          if: fc.constantFrom('(<urn:uuid:1>)', '(Not <DAV:no-lock>)', '<http://127.0.0.1/f.txt> (["x"])', '((', '(<a b>)', ''),
          range: fc.constantFrom('bytes=0-1', 'bytes=-1,0-', 'bytes=5-1', 'items=0-1', 'bytes=' + '0-,'.repeat(50)),
          timeout: fc.constantFrom('Second-5', 'Infinite', 'Second-x', ''),
          'lock-token': fc.constantFrom('<urn:uuid:00000000-0000-0000-0000-000000000000>', 'garbage', '<>'),
          'content-type': fc.constantFrom('application/xml', 'text/plain'),
          expect: fc.constant('100-continue'),
        },
        { requiredKeys: [] },
      ),
      body: xmlBody,
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const reply = await h.req(r.method, r.path, { headers: r.headers, body: r.body === '' ? undefined : r.body });
        assert.ok(reply.status >= 200 && reply.status < 600 && ![500, 503].includes(reply.status), `${r.method} ${r.path} ${JSON.stringify(r.headers)}: ${reply.status} ${reply.body.slice(0, 300)}`);
        assert.ok(!reply.body.includes(SECRET), `${r.method} ${r.path} read the canary`);
        if (options.readOnly && WRITES.has(r.method)) assert.ok(reply.status >= 400, `${r.method} ${r.path} on a read-only share: ${reply.status}`);
      }),
      { numRuns: 400 },
    );
    assert.equal((await h.req('OPTIONS', '/')).status, 200, 'still serving');
    assert.equal(await readFile(join(h.outside, 'canary.txt'), 'utf8'), SECRET);
    assert.deepEqual((await readdir(h.outside)).filter((n) => n !== 'state').sort(), ['canary.txt']);
    if (options.readOnly) assert.deepEqual(await snapshot(h.root), before, 'a read-only share changed');
  });
}
