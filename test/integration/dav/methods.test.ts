/**
 * Each method's semantics and status codes over real HTTP on port 0 (RFC 4918, RFC 9110).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, open, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startServer, propfindBody, texts } from './harness.js';
import { warningLog } from '../../helpers/log.js';
import { parseXml } from '../../../dav/xml-parse.js';
import { textOf } from '../../../dav/xml.js';

test('OPTIONS advertises class 1 and 2, the methods and MS-Author-Via', async (t) => {
  const h = await startServer(t);
  const r = await h.req('OPTIONS', '/');
  assert.equal(r.status, 200);
  assert.equal(r.headers.dav, '1, 2');
  assert.equal(r.headers['ms-author-via'], 'DAV');
  for (const m of ['PROPFIND', 'PROPPATCH', 'LOCK', 'UNLOCK', 'COPY', 'MOVE', 'MKCOL', 'PUT', 'DELETE']) assert.match(String(r.headers.allow), new RegExp(m));
  assert.equal((await h.req('OPTIONS', '*')).status, 400, 'OPTIONS * names no resource of the share');
});

test('PUT: 201 then 204, ETag, content on disk; 409 without parent; 405 on a collection', async (t) => {
  const h = await startServer(t);
  const a = await h.req('PUT', '/a.txt', { body: 'one' });
  assert.equal(a.status, 201);
  assert.match(String(a.headers.etag), /^"[0-9a-f-]+"$/);
  const b = await h.req('PUT', '/a.txt', { body: 'two!' });
  assert.equal(b.status, 204);
  assert.notEqual(b.headers.etag, a.headers.etag);
  assert.equal(await readFile(join(h.root, 'a.txt'), 'utf8'), 'two!');
  assert.equal((await h.req('PUT', '/missing/x', { body: 'x' })).status, 409);
  assert.equal((await h.req('PUT', '/a.txt/x', { body: 'x' })).status, 409);
  await mkdir(join(h.root, 'd'));
  assert.equal((await h.req('PUT', '/d', { body: 'x' })).status, 405);
  assert.equal((await h.req('PUT', '/e.txt', { body: 'x', headers: { 'content-range': 'bytes 0-0/1' } })).status, 400);
  assert.equal((await h.req('PUT', '/empty', { body: '' })).status, 201);
  assert.equal((await stat(join(h.root, 'empty'))).size, 0);
});

test('PUT conditionals: If-None-Match * creates only, If-Match guards replacement', async (t) => {
  const h = await startServer(t);
  assert.equal((await h.req('PUT', '/c', { body: '1', headers: { 'if-none-match': '*' } })).status, 201);
  assert.equal((await h.req('PUT', '/c', { body: '2', headers: { 'if-none-match': '*' } })).status, 412);
  const etag = String((await h.req('HEAD', '/c')).headers.etag);
  assert.equal((await h.req('PUT', '/c', { body: '3', headers: { 'if-match': '"nope"' } })).status, 412);
  assert.equal((await h.req('PUT', '/c', { body: '4', headers: { 'if-match': etag } })).status, 204);
  assert.equal(await readFile(join(h.root, 'c'), 'utf8'), '4');
});

test('PUT with X-OC-Mtime (rclone, Nextcloud clients) keeps the date: set before the rename, refused when bad', async (t) => {
  const h = await startServer(t);
  const r = await h.req('PUT', '/dated.txt', { body: 'x', headers: { 'x-oc-mtime': '1580702706' } });
  assert.equal(r.status, 201);
  assert.equal(r.headers['x-oc-mtime'], 'accepted');
  assert.equal((await stat(join(h.root, 'dated.txt'))).mtimeMs, 1580702706_000);
  const p = await h.req('PROPFIND', '/dated.txt', { headers: { depth: '0' }, body: propfindBody('getlastmodified', 'getetag') });
  assert.deepEqual(texts(p.body, 'getlastmodified'), ['Mon, 03 Feb 2020 04:05:06 GMT']);
  assert.deepEqual(texts(p.body, 'getetag'), [String(r.headers.etag)], 'the ETag answered is the stored file’s');
  // A replacement takes its own date; fractions of a second are kept.
  assert.equal((await h.req('PUT', '/dated.txt', { body: 'y', headers: { 'x-oc-mtime': '1600000000.25' } })).status, 204);
  assert.equal((await stat(join(h.root, 'dated.txt'))).mtimeMs, 1600000000_250);
  for (const bad of ['-1', '0', '86400', 'yesterday', '0x5e37a1f2', '1e9', '99999999999999']) {
    const b = await h.req('PUT', '/dated.txt', { body: 'z', headers: { 'x-oc-mtime': bad } });
    assert.equal(b.status, 400, bad);
    assert.match(b.body, /X-OC-Mtime/);
  }
  assert.equal(await readFile(join(h.root, 'dated.txt'), 'utf8'), 'y', 'a refused PUT wrote nothing');
});

test('PUT with OC-Checksum (rclone, ownCloud clients): a body that does not match never replaces the file', async (t) => {
  const h = await startServer(t);
  const digest = (algorithm: string, data: Buffer | string) => createHash(algorithm).update(data).digest('hex');
  // Both ways a body is stored: read whole (small) and streamed (over 64 KiB).
  for (const data of [Buffer.from('first'), randomBytes(300_000)]) {
    const r = await h.req('PUT', '/sum.bin', { body: data, headers: { 'oc-checksum': `SHA1:${digest('sha1', data).toUpperCase()}` } });
    assert.ok(r.status === 201 || r.status === 204, String(r.status));
    assert.ok((await readFile(join(h.root, 'sum.bin'))).equals(data));
  }
  const kept = await readFile(join(h.root, 'sum.bin'));
  for (const data of [Buffer.from('second'), randomBytes(300_000)]) {
    for (const [algorithm, type] of [['md5', 'MD5'], ['sha1', 'SHA1'], ['sha256', 'SHA256']] as const) {
      const wrong = digest(algorithm, Buffer.concat([data, Buffer.from('!')]));
      const r = await h.req('PUT', '/sum.bin', { body: data, headers: { 'oc-checksum': `${type}:${wrong}` } });
      assert.equal(r.status, 400, type);
      assert.match(r.body, /DAV_ERR_CHECKSUM_MISMATCH|does not match its OC-Checksum/, type);
    }
    // Every known digest named is checked: one right and one wrong is still a mismatch.
    const both = `MD5:${digest('md5', data)} SHA1:${'0'.repeat(40)}`;
    assert.equal((await h.req('PUT', '/sum.bin', { body: data, headers: { 'oc-checksum': both } })).status, 400);
    assert.equal((await h.req('PUT', '/new.bin', { body: data, headers: { 'oc-checksum': `MD5:${'0'.repeat(32)}` } })).status, 400);
  }
  assert.ok((await readFile(join(h.root, 'sum.bin'))).equals(kept), 'the file is the last one that matched');
  await assert.rejects(stat(join(h.root, 'new.bin')), 'a new file that did not match was not created');
  assert.deepEqual((await readdir(h.root)).sort(), ['sum.bin'], 'no temporary file is left behind');
  // A malformed digest is refused before the body; types this server does not compute are not checked.
  const bad = await h.req('PUT', '/sum.bin', { body: 'x', headers: { 'oc-checksum': 'SHA1:xyz' } });
  assert.equal(bad.status, 400);
  assert.match(bad.body, /OC-Checksum: SHA1 must be 40 hex digits/);
  assert.equal((await h.req('PUT', '/sum.bin', { body: 'third', headers: { 'oc-checksum': 'ADLER32:00000000' } })).status, 204);
  assert.equal(await readFile(join(h.root, 'sum.bin'), 'utf8'), 'third');
});

test('PUT keeps the permissions of the file it replaces', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.root, 'x.sh'), 'old', { mode: 0o751 });
  assert.equal((await h.req('PUT', '/x.sh', { body: 'new' })).status, 204);
  assert.equal((await stat(join(h.root, 'x.sh'))).mode & 0o777, 0o751);
});

test('GET/HEAD: body, validators, type, 404, 304 and 412', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.root, 'page.html'), '<p>hi</p>');
  const g = await h.req('GET', '/page.html');
  assert.equal(g.status, 200);
  assert.equal(g.body, '<p>hi</p>');
  assert.equal(g.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(g.headers['accept-ranges'], 'bytes');
  assert.ok(g.headers['last-modified']);
  const hd = await h.req('HEAD', '/page.html');
  assert.equal(hd.status, 200);
  assert.equal(hd.body, '');
  assert.equal(hd.headers['content-length'], '9');
  assert.equal(hd.headers.etag, g.headers.etag);
  assert.equal((await h.req('GET', '/nope')).status, 404);
  assert.equal((await h.req('GET', '/page.html', { headers: { 'if-none-match': String(g.headers.etag) } })).status, 304);
  assert.equal((await h.req('GET', '/page.html', { headers: { 'if-modified-since': String(g.headers['last-modified']) } })).status, 304);
  assert.equal((await h.req('GET', '/page.html', { headers: { 'if-match': '"other"' } })).status, 412);
  assert.equal((await h.req('GET', '/page.html', { headers: { 'if-unmodified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' } })).status, 412);
});

test('GET ranges: single, suffix, multiple (multipart/byteranges), 416, If-Range', async (t) => {
  const h = await startServer(t);
  const data = Buffer.from('0123456789abcdefghij');
  await writeFile(join(h.root, 'r.bin'), data);
  const one = await h.req('GET', '/r.bin', { headers: { range: 'bytes=2-5' } });
  assert.equal(one.status, 206);
  assert.equal(one.body, '2345');
  assert.equal(one.headers['content-range'], 'bytes 2-5/20');
  const suffix = await h.req('GET', '/r.bin', { headers: { range: 'bytes=-3' } });
  assert.equal(suffix.body, 'hij');
  const multi = await h.req('GET', '/r.bin', { headers: { range: 'bytes=0-1,10-11' } });
  assert.equal(multi.status, 206);
  const boundary = /boundary=(\S+)/.exec(String(multi.headers['content-type']))?.[1];
  assert.ok(boundary);
  assert.equal(Number(multi.headers['content-length']), multi.raw.length);
  const parts = multi.body.split(`--${boundary}`).slice(1, -1);
  assert.equal(parts.length, 2);
  assert.match(parts[0] ?? '', /Content-Range: bytes 0-1\/20\r\n\r\n01\r\n$/);
  assert.match(parts[1] ?? '', /Content-Range: bytes 10-11\/20\r\n\r\nab\r\n$/);
  assert.ok(multi.body.endsWith(`--${boundary}--\r\n`));
  const bad = await h.req('GET', '/r.bin', { headers: { range: 'bytes=50-60' } });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers['content-range'], 'bytes */20');
  const etag = String(one.headers.etag);
  assert.equal((await h.req('GET', '/r.bin', { headers: { range: 'bytes=0-0', 'if-range': etag } })).status, 206);
  const stale = await h.req('GET', '/r.bin', { headers: { range: 'bytes=0-0', 'if-range': '"old"' } });
  assert.equal(stale.status, 200);
  assert.equal(stale.body, data.toString());
});

test('GET of a big file streams it whole (stream path, not the small-file path)', async (t) => {
  const h = await startServer(t);
  const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'x');
  big.write('END', big.length - 3);
  await writeFile(join(h.root, 'big'), big);
  const r = await h.req('GET', '/big');
  assert.equal(r.raw.length, big.length);
  assert.ok(r.raw.equals(big));
  const tail = await h.req('GET', '/big', { headers: { range: `bytes=${big.length - 3}-` } });
  assert.equal(tail.body, 'END');
});

test('a file past 4 GiB: its length, ranges beyond 2^32 and its listing are exact (sparse, no disk used)', async (t) => {
  const h = await startServer(t);
  const size = 6 * 2 ** 30;
  const at5g = 5 * 2 ** 30;
  const file = join(h.root, 'huge.img');
  await writeFile(file, '');
  await truncate(file, size);
  const fd = await open(file, 'r+');
  try {
    await fd.write(Buffer.from('MARK'), 0, 4, at5g);
    await fd.write(Buffer.from('END'), 0, 3, size - 3);
  } finally {
    await fd.close();
  }
  const head = await h.req('HEAD', '/huge.img');
  assert.equal(head.headers['content-length'], String(size));
  const mark = await h.req('GET', '/huge.img', { headers: { range: `bytes=${at5g}-${at5g + 3}` } });
  assert.equal(mark.status, 206);
  assert.equal(mark.body, 'MARK');
  assert.equal(mark.headers['content-range'], `bytes ${at5g}-${at5g + 3}/${size}`);
  assert.equal((await h.req('GET', '/huge.img', { headers: { range: 'bytes=-3' } })).body, 'END');
  const multi = await h.req('GET', '/huge.img', { headers: { range: `bytes=${at5g}-${at5g + 1},${size - 3}-` } });
  assert.match(multi.body, new RegExp(`Content-Range: bytes ${at5g}-${at5g + 1}/${size}\r\n\r\nMA\r\n`));
  assert.match(multi.body, new RegExp(`Content-Range: bytes ${size - 3}-${size - 1}/${size}\r\n\r\nEND\r\n`));
  assert.equal((await h.req('GET', '/huge.img', { headers: { range: `bytes=${size}-` } })).status, 416);
  const listed = await h.req('PROPFIND', '/', { headers: { depth: '1' }, body: propfindBody('getcontentlength') });
  assert.deepEqual(texts(listed.body, 'getcontentlength'), [String(size)]);
});

test('GET on a collection is an HTML index with escaped names', async (t) => {
  const h = await startServer(t);
  await mkdir(join(h.root, 'sub'));
  await writeFile(join(h.root, '<b>&"x".txt'), 'x');
  const r = await h.req('GET', '/');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/html/);
  assert.ok(r.body.includes('&lt;b&gt;&amp;"x".txt'));
  assert.ok(r.body.includes('href="/%3Cb%3E%26%22x%22.txt"'));
  assert.ok(r.body.includes('href="/sub/"'));
  assert.ok(!r.body.includes('<b>&'));
});

test('names the host allows: a backslash is a plain character (listed, served, created, moved to); a name not valid UTF-8 is reported', { skip: process.platform === 'win32' && 'a backslash separates paths on Windows' }, async (t) => {
  const { log, warnings } = warningLog();
  const h = await startServer(t, { log });
  await writeFile(join(h.root, 'host\\bs.txt'), 'B');
  await writeFile(Buffer.concat([Buffer.from(h.root + '/caf'), Buffer.from([0xe9]), Buffer.from('.txt')]), 'latin-1 name');

  const list = await h.req('PROPFIND', '/', { headers: { depth: '1' }, body: propfindBody('getcontentlength') });
  assert.deepEqual(texts(list.body, 'href').sort(), ['/', '/host%5Cbs.txt']);
  assert.equal((await h.req('GET', '/host%5Cbs.txt')).body, 'B');
  assert.equal((await h.req('PUT', '/up%5Cload.txt', { body: 'U' })).status, 201);
  assert.equal(await readFile(join(h.root, 'up\\load.txt'), 'utf8'), 'U');
  assert.equal((await h.req('MOVE', '/up%5Cload.txt', { headers: { destination: '/a%5C..%5C..%5Cb' } })).status, 201);
  assert.equal(await readFile(join(h.root, 'a\\..\\..\\b'), 'utf8'), 'U');
  // Unencoded, a backslash may be meant as a separator: refused.
  assert.equal((await h.req('GET', '/host\\bs.txt')).status, 400);

  // The file with a Latin-1 name cannot be named in a URL: not listed, and the log says why, once.
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0] ?? '', /not valid UTF-8.*caf\uFFFD\.txt/);
  await h.req('PROPFIND', '/', { headers: { depth: '1' } });
  assert.equal(warnings.length, 1);
});

test('MKCOL: 201, 405 when it exists, 409 without parent, 415 with a body', async (t) => {
  const h = await startServer(t);
  assert.equal((await h.req('MKCOL', '/c/')).status, 201);
  assert.ok((await stat(join(h.root, 'c'))).isDirectory());
  assert.equal((await h.req('MKCOL', '/c/')).status, 405);
  await writeFile(join(h.root, 'f'), '');
  assert.equal((await h.req('MKCOL', '/f')).status, 405);
  assert.equal((await h.req('MKCOL', '/x/y/')).status, 409);
  assert.equal((await h.req('MKCOL', '/b/', { body: '<x/>', headers: { 'content-type': 'text/xml' } })).status, 415);
});

test('DELETE: 204 for files and trees, 404 missing, the root refused, Depth must be infinity', async (t) => {
  const h = await startServer(t);
  await mkdir(join(h.root, 't', 'u'), { recursive: true });
  await writeFile(join(h.root, 't', 'u', 'f'), 'x');
  await writeFile(join(h.root, 'g'), 'x');
  assert.equal((await h.req('DELETE', '/t/', { headers: { depth: '0' } })).status, 400);
  assert.equal((await h.req('DELETE', '/t/')).status, 204);
  assert.equal((await h.req('DELETE', '/g')).status, 204);
  await assert.rejects(stat(join(h.root, 't')));
  assert.equal((await h.req('DELETE', '/g')).status, 404);
  assert.equal((await h.req('DELETE', '/')).status, 403);
});

test('DELETE reports members that could not be removed in a 207, and only those', async (t) => {
  const h = await startServer(t);
  await mkdir(join(h.root, 'p', 'locked'), { recursive: true });
  const stuck = join(h.root, 'p', 'locked', 'f');
  await writeFile(stuck, 'x');
  await writeFile(join(h.root, 'p', 'free'), 'x');
  // Root ignores directory permissions, so as root the member is made immutable instead.
  const root = process.getuid?.() === 0;
  try {
    if (root) execFileSync('chattr', ['+i', stuck], { stdio: 'ignore' });
    else await chmod(join(h.root, 'p', 'locked'), 0o555);
  } catch {
    t.skip('chattr +i is not available on this file system');
    return;
  }
  let r;
  try {
    r = await h.req('DELETE', '/p/');
  } finally {
    if (root) execFileSync('chattr', ['-i', stuck], { stdio: 'ignore' });
    else await chmod(join(h.root, 'p', 'locked'), 0o755);
  }
  assert.equal(r.status, 207);
  assert.deepEqual(texts(r.body, 'href'), ['/p/locked/f']);
  assert.match(r.body, /HTTP\/1.1 403/);
  await assert.rejects(stat(join(h.root, 'p', 'free')), 'what could be removed is gone');
});

test('COPY and MOVE: 201/204, Overwrite, Depth, same resource, nesting, other host, missing parent', async (t) => {
  const h = await startServer(t);
  const host = `127.0.0.1:${h.port}`;
  const dest = (p: string) => ({ destination: `http://${host}${p}` });
  await mkdir(join(h.root, 'src', 'in'), { recursive: true });
  await writeFile(join(h.root, 'src', 'in', 'f'), 'deep');
  await writeFile(join(h.root, 'src', 'g'), 'top');
  assert.equal((await h.req('COPY', '/src/', { headers: dest('/copy/') })).status, 201);
  assert.equal(await readFile(join(h.root, 'copy', 'in', 'f'), 'utf8'), 'deep');
  assert.equal((await h.req('COPY', '/src/', { headers: { ...dest('/copy/'), overwrite: 'F' } })).status, 412);
  assert.equal((await h.req('COPY', '/src/g', { headers: dest('/copy/') })).status, 204, 'Overwrite T replaces a collection by a file');
  assert.equal(await readFile(join(h.root, 'copy'), 'utf8'), 'top');
  assert.equal((await h.req('COPY', '/src/', { headers: { ...dest('/shallow/'), depth: '0' } })).status, 201);
  assert.deepEqual(await readdir(join(h.root, 'shallow')), [], 'Depth 0 copies the collection without members');
  assert.equal((await h.req('COPY', '/src/', { headers: { ...dest('/d1/'), depth: '1' } })).status, 400);
  assert.equal((await h.req('COPY', '/src/', { headers: dest('/src/') })).status, 403);
  assert.equal((await h.req('COPY', '/src/', { headers: dest('/src/in/deeper/') })).status, 403);
  assert.equal((await h.req('COPY', '/src/g', { headers: dest('/no/parent') })).status, 409);
  assert.equal((await h.req('COPY', '/src/g', { headers: { destination: 'http://elsewhere.example/x' } })).status, 502);
  assert.equal((await h.req('COPY', '/src/g', {})).status, 400);
  assert.equal((await h.req('COPY', '/nope', { headers: dest('/x') })).status, 404);
  assert.equal((await h.req('MOVE', '/src/', { headers: { ...dest('/moved/'), depth: '0' } })).status, 400);
  assert.equal((await h.req('MOVE', '/src/', { headers: dest('/moved/') })).status, 201);
  await assert.rejects(stat(join(h.root, 'src')));
  assert.equal(await readFile(join(h.root, 'moved', 'in', 'f'), 'utf8'), 'deep');
  assert.equal((await h.req('MOVE', '/moved/g', { headers: { destination: '/shallow' } })).status, 204, 'absolute-path Destination');
  assert.equal((await h.req('MOVE', '/moved/', { headers: dest('/') })).status, 403);
});

test('PROPFIND: depth 0/1/infinity, allprop, propname, named, 404 propstat, empty body', async (t) => {
  const h = await startServer(t);
  await mkdir(join(h.root, 'd', 'e'), { recursive: true });
  await writeFile(join(h.root, 'd', 'f.txt'), 'hello');
  const d0 = await h.req('PROPFIND', '/d/', { headers: { depth: '0' } });
  assert.equal(d0.status, 207);
  assert.deepEqual(texts(d0.body, 'href'), ['/d/']);
  const d1 = await h.req('PROPFIND', '/d/', { headers: { depth: '1' }, body: propfindBody('getcontentlength', 'resourcetype', 'nonexistent') });
  assert.deepEqual(texts(d1.body, 'href'), ['/d/', '/d/e/', '/d/f.txt']);
  assert.deepEqual(texts(d1.body, 'getcontentlength'), ['5']);
  assert.ok(d1.body.includes('HTTP/1.1 404 Not Found'));
  assert.ok(d1.body.includes('<D:nonexistent/>'));
  const inf = await h.req('PROPFIND', '/', { body: '' });
  assert.deepEqual(texts(inf.body, 'href'), ['/', '/d/', '/d/e/', '/d/f.txt'], 'no Depth = infinity; empty body = allprop');
  assert.deepEqual(texts(inf.body, 'getcontenttype').slice(-1), ['text/plain; charset=utf-8']);
  assert.match(texts(inf.body, 'creationdate')[0] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(texts(inf.body, 'getlastmodified')[0] ?? '', /^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
  const names = await h.req('PROPFIND', '/d/f.txt', { headers: { depth: '0' }, body: '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>' });
  assert.ok(names.body.includes('<D:getetag/>'));
  assert.ok(!names.body.includes('hello'));
  assert.equal((await h.req('PROPFIND', '/nope', { headers: { depth: '0' } })).status, 404);
  assert.equal((await h.req('PROPFIND', '/', { headers: { depth: '2' } })).status, 400);
  assert.equal((await h.req('PROPFIND', '/', { body: '<D:propfind xmlns:D="DAV:"><D:prop>' })).status, 400);
  assert.equal((await h.req('PROPFIND', '/', { body: '<x:propfind xmlns:x="urn:no"/>' })).status, 400);
});

test('PROPFIND Depth infinity beyond the limit is 403 propfind-finite-depth', async (t) => {
  const h = await startServer(t, { maxInfinityEntries: 3 });
  for (const n of ['a', 'b', 'c', 'd']) await writeFile(join(h.root, n), '');
  const r = await h.req('PROPFIND', '/', { headers: { depth: 'infinity' } });
  assert.equal(r.status, 403);
  assert.ok(r.body.includes('<D:propfind-finite-depth/>'));
  assert.equal((await h.req('PROPFIND', '/', { headers: { depth: '1' } })).status, 207);
});

test('quota properties (RFC 4331) on collections, only when asked', async (t) => {
  const h = await startServer(t);
  const r = await h.req('PROPFIND', '/', { headers: { depth: '0' }, body: propfindBody('quota-available-bytes', 'quota-used-bytes') });
  assert.match(texts(r.body, 'quota-available-bytes')[0] ?? '', /^\d+$/);
  assert.match(texts(r.body, 'quota-used-bytes')[0] ?? '', /^\d+$/);
  assert.ok(!(await h.req('PROPFIND', '/', { headers: { depth: '0' } })).body.includes('quota'));
});

test('PROPPATCH: set and remove in order, values with namespaces, U+10000 and CRLF read back exactly', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.root, 'f'), '');
  const body = `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop>
    <Z:a>\u{10000} &amp; <Z:inner attr="v">x</Z:inner></Z:a><Z:b>gone</Z:b><plain xmlns="">n</plain>
    <Z:crlf>line 1&#13;&#10;line 2&#13;</Z:crlf></D:prop></D:set>
    <D:remove><D:prop><Z:b/></D:prop></D:remove></D:propertyupdate>`;
  const p = await h.req('PROPPATCH', '/f', { body });
  assert.equal(p.status, 207);
  assert.ok(!p.body.includes('424'));
  const r = await h.req('PROPFIND', '/f', { headers: { depth: '0' }, body: '<D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:a/><Z:b/><plain xmlns=""/><Z:crlf/></D:prop></D:propfind>' });
  assert.match(r.body, /<ns0:a xmlns:ns0="urn:z">\u{10000} &amp; <ns0:inner attr="v">x<\/ns0:inner><\/ns0:a>/u);
  assert.ok(r.body.includes('<plain>n</plain>'));
  // A raw CR would reach the client as LF: an XML parser normalises line ends.
  const crlf = /<ns\d+:crlf[^>]*>[^<]*<\/ns\d+:crlf>/.exec(r.body)?.[0] ?? '';
  assert.equal(textOf(parseXml(crlf, { maxDepth: 4 })), 'line 1\r\nline 2\r', crlf);
  assert.match(r.body, /<D:prop><ns0:b xmlns:ns0="urn:z"\/><\/D:prop><D:status>HTTP\/1.1 404/);
});

test('PROPPATCH is atomic: a protected property fails with 403 and the rest with 424, nothing changes', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.root, 'f'), '');
  const body = '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:getetag>x</D:getetag><D:foo>bar</D:foo></D:prop></D:set></D:propertyupdate>';
  const p = await h.req('PROPPATCH', '/f', { body });
  assert.equal(p.status, 207);
  assert.match(p.body, /<D:getetag\/><\/D:prop><D:status>HTTP\/1.1 403/);
  assert.match(p.body, /<D:foo\/><\/D:prop><D:status>HTTP\/1.1 424/);
  const r = await h.req('PROPFIND', '/f', { headers: { depth: '0' }, body: propfindBody('foo') });
  assert.ok(r.body.includes('404'));
  assert.equal((await h.req('PROPPATCH', '/nope', { body })).status, 404);
  assert.equal((await h.req('PROPPATCH', '/f', { body: '<D:propfind xmlns:D="DAV:"/>' })).status, 400);
});

test('Win32 properties: times land on the real file, attributes and creation time are kept', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.root, 'w.doc'), 'x');
  const mtime = 'Tue, 02 Jan 2001 03:04:05 GMT';
  const body = `<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>
    <Z:Win32LastModifiedTime>${mtime}</Z:Win32LastModifiedTime><Z:Win32LastAccessTime>Wed, 03 Jan 2001 00:00:00 GMT</Z:Win32LastAccessTime>
    <Z:Win32CreationTime>Mon, 01 Jan 2001 00:00:00 GMT</Z:Win32CreationTime><Z:Win32FileAttributes>00000021</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>`;
  const p = await h.req('PROPPATCH', '/w.doc', { body });
  assert.equal(p.status, 207);
  assert.ok(!/HTTP\/1.1 (4|5)\d\d/.test(p.body), p.body);
  const st = await stat(join(h.root, 'w.doc'));
  assert.equal(st.mtime.toUTCString(), mtime);
  assert.equal(st.atime.toISOString(), '2001-01-03T00:00:00.000Z');
  const r = await h.req('PROPFIND', '/w.doc', { headers: { depth: '0' }, body: '<D:propfind xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:prop><Z:Win32LastModifiedTime/><Z:Win32CreationTime/><Z:Win32FileAttributes/><D:getlastmodified/></D:prop></D:propfind>' });
  assert.ok(r.body.includes(`>${mtime}</Z:Win32LastModifiedTime>`), r.body);
  assert.ok(r.body.includes('Mon, 01 Jan 2001 00:00:00 GMT</'), r.body);
  assert.ok(r.body.includes('00000021</'));
  assert.deepEqual(texts(r.body, 'getlastmodified'), [mtime]);
  // Anything but an HTTP-date is refused and leaves the file's time alone; `Date.parse` took "1" for 2001.
  for (const value of ['not a date', '1', '2030-01-01', 'Tue, 31 Feb 2026 00:00:00 GMT']) {
    const bad = await h.req('PROPPATCH', '/w.doc', { body: `<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32LastModifiedTime>${value}</Z:Win32LastModifiedTime></D:prop></D:set></D:propertyupdate>` });
    assert.match(bad.body, /HTTP\/1.1 409/, value);
    assert.equal((await stat(join(h.root, 'w.doc'))).mtime.toUTCString(), mtime, value);
  }
});

test('PROPPATCH DAV:lastmodified (ownCloud, rclone) sets the real file\'s date instead of storing a property', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.root, 'o.txt'), 'x');
  await mkdir(join(h.root, 'dir'));
  const update = (value: string) => `<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:lastmodified>${value}</d:lastmodified></d:prop></d:set></d:propertyupdate>`;
  for (const path of ['/o.txt', '/dir']) {
    const p = await h.req('PROPPATCH', path, { body: update('1580702706') });
    assert.equal(p.status, 207);
    assert.match(p.body, /HTTP\/1.1 200/);
    assert.equal((await stat(join(h.root, path))).mtimeMs, 1580702706_000, path);
    const r = await h.req('PROPFIND', path, { headers: { depth: '0' }, body: propfindBody('getlastmodified') });
    assert.deepEqual(texts(r.body, 'getlastmodified'), ['Mon, 03 Feb 2020 04:05:06 GMT'], path);
  }
  // It is not kept as a dead property, which would claim a date the file no longer has once it changes.
  const all = await h.req('PROPFIND', '/o.txt', { headers: { depth: '0' } });
  assert.doesNotMatch(all.body, /:lastmodified>/);
  for (const value of ['yesterday', '0', '-5', '2020-02-03']) {
    const bad = await h.req('PROPPATCH', '/o.txt', { body: update(value) });
    assert.match(bad.body, /HTTP\/1.1 409/, value);
    assert.equal((await stat(join(h.root, 'o.txt'))).mtimeMs, 1580702706_000, value);
  }
});

test('LOCK/UNLOCK: exclusive, 423 for others, token in If unlocks writes, refresh, unmapped URL, expiry', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.root, 'f'), 'x');
  const lockinfo = (scope: string) => `<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:${scope}/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner><D:href>me</D:href></D:owner></D:lockinfo>`;
  const l = await h.req('LOCK', '/f', { body: lockinfo('exclusive'), headers: { timeout: 'Second-2' } });
  assert.equal(l.status, 200);
  const token = /<([^>]+)>/.exec(String(l.headers['lock-token']))?.[1] ?? '';
  assert.match(token, /^urn:uuid:/);
  assert.ok(l.body.includes('<D:timeout>Second-2</D:timeout>'));
  assert.ok(l.body.includes('<D:href>me</D:href>') || l.body.includes('>me<'));
  const put = await h.req('PUT', '/f', { body: 'y' });
  assert.equal(put.status, 423);
  assert.ok(put.body.includes('lock-token-submitted'));
  assert.equal((await h.req('DELETE', '/f')).status, 423);
  assert.equal((await h.req('LOCK', '/f', { body: lockinfo('shared') })).status, 423);
  assert.equal((await h.req('PUT', '/f', { body: 'z', headers: { if: `(<${token}>)` } })).status, 204);
  assert.equal((await h.req('PUT', '/f', { body: 'z', headers: { if: `(<${token}> ["nope"])` } })).status, 412);
  const refreshed = await h.req('LOCK', '/f', { headers: { if: `(<${token}>)`, timeout: 'Second-60' } });
  assert.equal(refreshed.status, 200);
  assert.ok(refreshed.body.includes('Second-60'));
  assert.equal((await h.req('UNLOCK', '/f', { headers: { 'lock-token': '<urn:uuid:bogus>' } })).status, 409);
  assert.equal((await h.req('UNLOCK', '/f')).status, 400);
  assert.equal((await h.req('UNLOCK', '/f', { headers: { 'lock-token': `<${token}>` } })).status, 204);
  assert.equal((await h.req('PUT', '/f', { body: 'free' })).status, 204);
  const u = await h.req('LOCK', '/new', { body: lockinfo('exclusive'), headers: { timeout: 'Second-1' } });
  assert.equal(u.status, 201, 'LOCK on an unmapped URL creates an empty resource');
  assert.equal((await stat(join(h.root, 'new'))).size, 0);
  assert.equal((await h.req('PUT', '/new', { body: 'x' })).status, 423);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((await h.req('PUT', '/new', { body: 'x' })).status, 204, 'the expired lock no longer blocks');
  const disc = await h.req('PROPFIND', '/new', { headers: { depth: '0' }, body: propfindBody('lockdiscovery') });
  assert.ok(disc.body.includes('<D:lockdiscovery/>'), 'the expired lock is not listed');
});

test('locks: shared locks, depth-infinity collection locks, tagged If lists, MOVE of a locked resource', async (t) => {
  const h = await startServer(t);
  const lockinfo = (scope: string) => `<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:${scope}/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`;
  await mkdir(join(h.root, 'c'));
  await writeFile(join(h.root, 'c', 'm'), 'x');
  const s1 = await h.req('LOCK', '/c/m', { body: lockinfo('shared'), headers: { depth: '0' } });
  const s2 = await h.req('LOCK', '/c/m', { body: lockinfo('shared'), headers: { depth: '0' } });
  assert.equal(s1.status, 200);
  assert.equal(s2.status, 200);
  const t2 = /<([^>]+)>/.exec(String(s2.headers['lock-token']))?.[1];
  assert.equal((await h.req('PUT', '/c/m', { body: 'y', headers: { if: `(<${t2}>)` } })).status, 204, 'any one shared token suffices');
  const t1 = /<([^>]+)>/.exec(String(s1.headers['lock-token']))?.[1];
  await h.req('UNLOCK', '/c/m', { headers: { 'lock-token': `<${t1}>` } });
  await h.req('UNLOCK', '/c/m', { headers: { 'lock-token': `<${t2}>` } });
  const c = await h.req('LOCK', '/c/', { body: lockinfo('exclusive') });
  assert.equal(c.status, 200);
  const tc = /<([^>]+)>/.exec(String(c.headers['lock-token']))?.[1];
  assert.equal((await h.req('PUT', '/c/new', { body: 'x' })).status, 423, 'a depth-infinity lock covers new members');
  assert.equal((await h.req('PUT', '/c/new', { body: 'x', headers: { if: `<http://127.0.0.1:${h.port}/c/> (<${tc}>)` } })).status, 201);
  assert.equal((await h.req('MOVE', '/c/m', { headers: { destination: '/m2' } })).status, 423);
  assert.equal((await h.req('MOVE', '/c/m', { headers: { destination: '/m2', if: `(<${tc}>)` } })).status, 201);
  assert.equal((await h.req('LOCK', '/c/new', { headers: { if: `(<${tc}>)` } })).status, 200, 'refresh through a member (indirect)');
  assert.equal((await h.req('PUT', '/c/new', { body: 'x', headers: { if: '(<urn:uuid:wrong>) (Not <DAV:no-lock>)' } })).status, 423, 'a true If header without the token is still locked');
});

test('locks: a LOCK that creates a file needs the tokens of its folder\'s locks, shared ones too', async (t) => {
  const h = await startServer(t);
  const lockinfo = (scope: string) => `<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:${scope}/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`;
  await mkdir(join(h.root, 'c'));
  for (const [scope, depth] of [['exclusive', '0'], ['shared', '0'], ['shared', 'infinity']]) {
    const folder = await h.req('LOCK', '/c/', { body: lockinfo(scope as string), headers: { depth: depth as string } });
    assert.equal(folder.status, 200);
    const token = /<([^>]+)>/.exec(String(folder.headers['lock-token']))?.[1];
    // Another client's LOCK on a new name would add a member to the locked folder.
    const other = await h.req('LOCK', '/c/new', { body: lockinfo('shared'), headers: { depth: '0' } });
    assert.equal(other.status, 423, `${scope} depth ${depth}`);
    assert.match(other.body, /lock-token-submitted/);
    assert.deepEqual(await readdir(join(h.root, 'c')), [], 'nothing was created');
    const holder = await h.req('LOCK', '/c/new', { body: lockinfo('shared'), headers: { depth: '0', if: `</c/> (<${token}>)` } });
    assert.equal(holder.status, 201, `${scope} depth ${depth}: the folder's holder creates`);
    const mine = /<([^>]+)>/.exec(String(holder.headers['lock-token']))?.[1];
    assert.equal((await h.req('UNLOCK', '/c/new', { headers: { 'lock-token': `<${mine}>` } })).status, 204);
    assert.equal((await h.req('DELETE', '/c/new', { headers: { if: `</c/> (<${token}>)` } })).status, 204);
    assert.equal((await h.req('UNLOCK', '/c/', { headers: { 'lock-token': `<${token}>` } })).status, 204);
  }
  // A LOCK on a file that exists adds nothing, so the folder's depth-0 lock does not stand in its way.
  await writeFile(join(h.root, 'c', 'old'), 'x');
  assert.equal((await h.req('LOCK', '/c/', { body: lockinfo('exclusive'), headers: { depth: '0' } })).status, 200);
  assert.equal((await h.req('LOCK', '/c/old', { body: lockinfo('exclusive'), headers: { depth: '0' } })).status, 200);
});
