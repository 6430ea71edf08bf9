/**
 * A corpus of hostile requests against a share with links leading out of it. A canary folder sits beside the
 * share: its file must keep its content and mtime, nothing may appear in it, and no answer may contain its
 * secret or the names inside it. Every request is sent as raw bytes, so no client normalises it first. The
 * corpus runs under both symlink policies.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, rawRequest } from './harness.js';

const SECRET = 'CANARY-SECRET-7f3a';
/** On POSIX hosts an encoded backslash is a plain character of one name (see dav/paths.ts); on Windows, 400. */
const ONE_NAME = process.platform !== 'win32';
const MARKER = 'canary-listing-marker';

interface Case {
  method: string;
  target: string;
  headers?: Record<string, string>;
  body?: string;
  /** Acceptable statuses. */
  expect: number[];
}

function corpus(port: number): Case[] {
  const host = `127.0.0.1:${port}`;
  const get = (target: string, expect = [400]): Case => ({ method: 'GET', target, expect });
  const dest = (method: string, from: string, to: string, expect: number[]): Case => ({ method, target: from, headers: { Destination: to }, expect });
  const lockinfo = '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>';
  const bomb = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><D:propfind xmlns:D="DAV:"><D:prop><D:x>&c;</D:x></D:prop></D:propfind>';
  const xxe = (root: string) => `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///${'../'.repeat(8)}etc/passwd">]>${root.replace('%E%', '&e;')}`;
  return [
    // Traversal in every encoding.
    get('/../outside/canary.txt'),
    get('/..%2foutside%2fcanary.txt'),
    get('/%2e%2e/outside/canary.txt'),
    get('/%2E%2E/outside/canary.txt'),
    get('/.%2e/outside/canary.txt'),
    get('/%2e./outside/canary.txt'),
    get('/dir/../../outside/canary.txt'),
    get('/./../outside/canary.txt'),
    get('//../outside/canary.txt'),
    get('/%2e%2e%2f%2e%2e%2foutside'),
    get('/..%5coutside%5ccanary.txt', ONE_NAME ? [404] : [400]),
    get('/..\\outside\\canary.txt'),
    get('/%2e%2e%5c%2e%2e%5coutside', ONE_NAME ? [404] : [400]),
    get('/%c0%ae%c0%ae/outside/canary.txt'),
    get('/%e0%80%ae%e0%80%ae/outside/canary.txt'),
    get('/%c0%af..%c0%afoutside'),
    get('/%u002e%u002e/outside'),
    get('/%252e%252e/outside/canary.txt', [404]),
    get('/..%252f..%252foutside', [404]),
    get('/..;/outside/canary.txt', [404]),
    get('/canary.txt%00.txt'),
    get('/%00'),
    get('/inside.txt/..'),
    get('/%2e'),
    get('/%2f%2e%2e'),
    get('/inside.txt%2f..%2f..%2foutside'),
    get(`http://${host}/../outside/canary.txt`),
    get('http://evil.example/../outside/canary.txt'),
    get('/#/../outside'),
    get('*'),
    get('/?/../../outside/canary.txt', [200]),
    get('/' + 'a/'.repeat(3000), [400, 404, 414, 431]),
    // Symlinks leading out of the share (never followed, under either policy).
    get('/out-link/canary.txt', [403]),
    get('/out-file', [403]),
    get('/root-link/etc/passwd', [403]),
    get('/inner/deep-out/canary.txt', [403]),
    get('/dangling', [403]),
    { method: 'HEAD', target: '/out-file', expect: [403] },
    { method: 'PROPFIND', target: '/out-link/', headers: { Depth: '1' }, expect: [403] },
    { method: 'PROPFIND', target: '/root-link/', headers: { Depth: '1' }, expect: [403] },
    { method: 'PROPFIND', target: '/', headers: { Depth: '1' }, expect: [207] },
    { method: 'PROPFIND', target: '/', headers: { Depth: 'infinity' }, expect: [207] },
    { method: 'GET', target: '/', expect: [200] },
    { method: 'PUT', target: '/out-link/new.txt', body: 'pwned', expect: [403] },
    { method: 'PUT', target: '/out-file', body: 'pwned', expect: [403] },
    { method: 'PUT', target: '/dangling', body: 'pwned', expect: [403] },
    { method: 'PUT', target: '/%2e%2e/outside/new.txt', body: 'pwned', expect: [400] },
    { method: 'MKCOL', target: '/out-link/newdir', expect: [403] },
    // Below a link, through a directory that does not exist (yet): still the link's verdict.
    { method: 'PUT', target: '/out-link/missing/new.txt', body: 'pwned', expect: [403] },
    { method: 'MKCOL', target: '/inner/deep-out/missing/newdir', expect: [403] },
    get('/root-link/missing/file', [403]),
    // A file used as a directory.
    get('/inside.txt/x', [404]),
    { method: 'PUT', target: '/inside.txt/x', body: 'pwned', expect: [409] },
    { method: 'MKCOL', target: '/dangling', expect: [403] },
    { method: 'DELETE', target: '/out-link/canary.txt', expect: [403] },
    { method: 'DELETE', target: '/out-file', expect: [403] },
    { method: 'DELETE', target: '/%2e%2e/outside/canary.txt', expect: [400] },
    { method: 'PROPPATCH', target: '/out-file', body: '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:x>1</D:x></D:prop></D:set></D:propertyupdate>', expect: [403] },
    { method: 'LOCK', target: '/out-file', body: lockinfo, expect: [403] },
    { method: 'LOCK', target: '/out-link/locknew', body: lockinfo, expect: [403] },
    { method: 'LOCK', target: '/dangling', body: lockinfo, expect: [403] },
    // COPY/MOVE with hostile sources and destinations.
    dest('COPY', '/out-file', '/stolen.txt', [403]),
    dest('COPY', '/out-link/', '/stolen/', [403]),
    dest('COPY', '/inside.txt', '/out-link/x', [403]),
    dest('MOVE', '/inside.txt', '/out-link/x', [403]),
    dest('MOVE', '/inside.txt', '/out-file', [403]),
    dest('COPY', '/inside.txt', '/dangling', [403]),
    dest('COPY', '/inside.txt', 'http://evil.example/x', [502]),
    dest('COPY', '/inside.txt', `http://127.0.0.1:${port + 1}/x`, [502]),
    dest('COPY', '/inside.txt', 'file:///etc/passwd', [502]),
    dest('COPY', '/inside.txt', `http://${host}/../outside/x`, [400]),
    dest('COPY', '/inside.txt', `http://${host}/%2e%2e/outside/x`, [400]),
    dest('MOVE', '/inside.txt', '/..%2foutside%2fx', [400]),
    dest('MOVE', '/inside.txt', '/%2e%2e/outside/x', [400]),
    dest('COPY', '/inside.txt', '/a%5c..%5c..%5coutside', ONE_NAME ? [201] : [400]),
    dest('COPY', '/inside.txt', '/x%00y', [400]),
    dest('COPY', '/inside.txt', `http://user@${host}/x`, [400]),
    dest('COPY', '/inside.txt', '//evil.example/x', [409]),
    dest('COPY', '/inside.txt', 'outside/x', [400]),
    dest('MOVE', '/dir/', '/dir/sub/', [403]),
    dest('MOVE', '/inside.txt', '/', [403]),
    // Hostile bodies.
    { method: 'PROPFIND', target: '/', headers: { Depth: '0', 'Content-Type': 'application/xml' }, body: bomb, expect: [400] },
    { method: 'PROPFIND', target: '/', headers: { Depth: '0' }, body: xxe('<D:propfind xmlns:D="DAV:"><D:prop><D:x>%E%</D:x></D:prop></D:propfind>'), expect: [400] },
    { method: 'PROPPATCH', target: '/inside.txt', body: xxe('<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:x>%E%</D:x></D:prop></D:set></D:propertyupdate>'), expect: [400] },
    { method: 'LOCK', target: '/inside.txt', body: xxe('<D:lockinfo xmlns:D="DAV:"><D:owner>%E%</D:owner></D:lockinfo>'), expect: [400] },
    { method: 'PROPFIND', target: '/', headers: { Depth: '0' }, body: '<D:propfind xmlns:D="DAV:">' + 'x'.repeat(70_000) + '</D:propfind>', expect: [413] },
    { method: 'GET', target: '/inside.txt', headers: { Range: 'bytes=' + Array(200).fill('0-').join(',') }, expect: [200] },
    { method: 'PUT', target: '/inside.txt', headers: { 'Content-Range': 'bytes 0-4/10' }, body: 'pwned', expect: [400] },
  ];
}

async function setUp(root: string, outside: string) {
  await writeFile(join(outside, 'canary.txt'), SECRET);
  await writeFile(join(outside, `${MARKER}.txt`), SECRET);
  await mkdir(join(root, 'dir', 'sub'), { recursive: true });
  await mkdir(join(root, 'inner'));
  await writeFile(join(root, 'inside.txt'), 'inside');
  await symlink('../outside', join(root, 'out-link'));
  await symlink(join(outside, 'canary.txt'), join(root, 'out-file'));
  await symlink('/', join(root, 'root-link'));
  await symlink('../../outside', join(root, 'inner', 'deep-out'));
  await symlink('../outside/created-through-dangling', join(root, 'dangling'));
  await symlink('dir', join(root, 'in-link'));
}

for (const policy of ['never', 'inside'] as const) {
  test(`hostile corpus (followSymlinks: ${policy}): nothing outside the share is read, listed or changed`, async (t) => {
    const h = await startServer(t, { followSymlinks: policy, maxXmlBytes: 64 * 1024 });
    await setUp(h.root, h.outside);
    const canary = join(h.outside, 'canary.txt');
    const before = await stat(canary);
    const outsideBefore = (await readdir(h.outside)).sort();
    const cases = corpus(h.port);
    assert.ok(cases.length >= 60, `corpus has ${cases.length} requests`);
    t.diagnostic(`${cases.length} hostile requests`);
    for (const c of cases) {
      const headers = { Host: `127.0.0.1:${h.port}`, Connection: 'close', ...c.headers };
      const body = c.body ?? '';
      const head = `${c.method} ${c.target} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
      const r = await rawRequest(h.port, head + body);
      const what = `${c.method} ${c.target.slice(0, 80)} ${JSON.stringify(c.headers ?? {}).slice(0, 120)}`;
      assert.ok(c.expect.includes(r.status), `${what} → ${r.status}, expected ${c.expect.join('/')}\n${r.text.slice(0, 400)}`);
      for (const leak of [SECRET, MARKER, 'root:x:0:0']) assert.ok(!r.text.includes(leak), `${what} leaked "${leak}"`);
      // Error messages echo the requested path; listings must not name links that lead out.
      if (r.status < 300) for (const link of ['out-link', 'out-file', 'root-link', 'deep-out', 'dangling']) assert.ok(!r.text.includes(link), `${what} listed "${link}"`);
    }
    const after = await stat(canary);
    assert.equal(await readFile(canary, 'utf8'), SECRET);
    assert.equal(after.mtimeMs, before.mtimeMs);
    assert.equal(after.ino, before.ino);
    assert.deepEqual((await readdir(h.outside)).sort(), outsideBefore, 'nothing was created outside the share');
    assert.equal(await readFile(join(h.root, 'inside.txt'), 'utf8'), 'inside', 'refused writes changed nothing inside either');
  });
}

test("followSymlinks 'inside' serves links within the share, 'never' hides them", async (t) => {
  const inside = await startServer(t, { followSymlinks: 'inside' });
  await setUp(inside.root, inside.outside);
  await writeFile(join(inside.root, 'dir', 'f.txt'), 'via link');
  assert.equal((await inside.req('GET', '/in-link/f.txt')).body, 'via link');
  assert.equal((await inside.req('PUT', '/in-link/sub/new.txt', { body: 'through the link' })).status, 201);
  assert.equal(await readFile(join(inside.root, 'dir', 'sub', 'new.txt'), 'utf8'), 'through the link');
  assert.equal((await inside.req('PUT', '/in-link/missing/new.txt', { body: 'x' })).status, 409, 'a missing parent below a link');
  const list = await inside.req('PROPFIND', '/', { headers: { depth: '1' } });
  assert.ok(list.body.includes('<D:href>/in-link/</D:href>'));
  assert.ok(!list.body.includes('out-link'));
  const never = await startServer(t);
  await setUp(never.root, never.outside);
  assert.equal((await never.req('GET', '/in-link/')).status, 403);
  assert.ok(!(await never.req('PROPFIND', '/', { headers: { depth: '1' } })).body.includes('in-link'));
});

test('names of the server’s temporaries cannot be addressed: not read, written, deleted, copied to or listed', async (t) => {
  const h = await startServer(t);
  const temp = '.spicedav-0123456789abcdef.part';
  await writeFile(join(h.root, temp), 'half of an upload');
  await mkdir(join(h.root, 'd'));
  const cases: [string, string, Record<string, string>?][] = [
    ['GET', `/${temp}`],
    ['GET', `/%2e${temp.slice(1)}`],
    ['PUT', `/${temp}`],
    ['PUT', `/d/${temp}`],
    ['DELETE', `/${temp}`],
    ['PROPFIND', `/${temp}`],
    ['MKCOL', `/d/${temp}/`],
    ['LOCK', `/d/${temp}`],
    ['COPY', '/d', { destination: `/${temp}`, overwrite: 'T' }],
    ['MOVE', '/d', { destination: `http://127.0.0.1:${h.port}/${temp}`, overwrite: 'T' }],
  ];
  for (const [method, path, headers] of cases) {
    const r = await h.req(method, path, { headers, body: method === 'PUT' ? 'replaced' : undefined });
    assert.equal(r.status, 403, `${method} ${path} → ${r.status} ${r.body}`);
  }
  assert.equal(await readFile(join(h.root, temp), 'utf8'), 'half of an upload');
  assert.deepEqual((await readdir(join(h.root, 'd'))), []);
  const listing = await h.req('PROPFIND', '/', { headers: { depth: '1' } });
  assert.doesNotMatch(listing.body, /spicedav-/);
  // A name that only looks alike is an ordinary file.
  assert.equal((await h.req('PUT', '/.spicedav-notes.part', { body: 'mine' })).status, 201);
});
