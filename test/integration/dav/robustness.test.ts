/**
 * What must hold when things go wrong or are unusual: aborted uploads, Expect: 100-continue, read-only shares,
 * dead properties across a restart, idle keep-alive connections, close().
 */
import test from 'node:test';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { mkdir, readdir, readFile, rename, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DavServer } from '../../../dav/index.js';
import { startServer, request, propfindBody, pausedPut, chunkedPut, readReply, type Harness, type Reply } from './harness.js';
import { mountTmpfs, tempDir, unmountTmpfs } from '../../helpers/tmp.js';
import { until } from '../../helpers/wait.js';
import { warningLog } from '../../helpers/log.js';

/** Open a raw connection and give back helpers to read what arrives. */
function connect(t: test.TestContext, port: number) {
  const sock = net.connect(port, '127.0.0.1');
  t.after(() => sock.destroy());
  let buf = '';
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => (buf += d));
  const until = async (pattern: RegExp, ms = 5000): Promise<string> => {
    const end = Date.now() + ms;
    while (!pattern.test(buf)) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${pattern}; got ${JSON.stringify(buf.slice(0, 300))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return buf;
  };
  return { sock, until, get text() { return buf; } };
}

for (const size of [1000, 4 * 1024 * 1024]) {
  test(`an aborted PUT (${size} B announced) leaves the old file, and no temporary file behind`, async (t) => {
    const h = await startServer(t);
    await writeFile(join(h.root, 'doc'), 'the old content');
    const c = connect(t, h.port);
    c.sock.write(`PUT /doc HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
    c.sock.write(Buffer.alloc(Math.floor(size / 2), 'n'));
    await new Promise((r) => setTimeout(r, 100));
    c.sock.destroy();
    const c2 = connect(t, h.port);
    c2.sock.write(`PUT /fresh HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\npartial`);
    await new Promise((r) => setTimeout(r, 100));
    c2.sock.destroy();
    await until(async () => (await readdir(h.root)).length === 1, 'the temporary files are removed');
    assert.deepEqual(await readdir(h.root), ['doc']);
    assert.equal(await readFile(join(h.root, 'doc'), 'utf8'), 'the old content');
    assert.equal((await h.req('GET', '/doc')).body, 'the old content');
  });
}

test('an upload cut before the server reads its body (file calls off the event loop, as on a slow disk) ends its request', async (t) => {
  // Headers, half the body and the close arrive together: the connection is gone while the temporary file is
  // being created in the thread pool, before anything listens to the body.
  const h = await startServer(t, { inlineIo: false });
  for (const size of [1000, 200_000]) {
    const sock = net.connect(h.port, '127.0.0.1');
    sock.end(`PUT /cut-${size} HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\nhalf of it`);
    sock.resume();
    await once(sock, 'close');
  }
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise((r) => (timer = setTimeout(() => r('a request never finished'), 5000)));
  const outcome = await Promise.race([h.server.close().then(() => 'closed'), stuck]);
  clearTimeout(timer);
  assert.equal(outcome, 'closed');
  assert.deepEqual(await readdir(h.root), [], 'no file and no temporary left');
});

test('Expect: 100-continue: 100 only after the checks, then the body is stored', async (t) => {
  const h = await startServer(t);
  const c = connect(t, h.port);
  c.sock.write('PUT /up.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
  await c.until(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
  c.sock.write('hello');
  await c.until(/HTTP\/1\.1 201 Created/);
  c.sock.destroy();
  assert.equal(await readFile(join(h.root, 'up.txt'), 'utf8'), 'hello');
});

test('Expect: 100-continue on a refused PUT gets the final status without 100 and closes', async (t) => {
  const h = await startServer(t);
  const c = connect(t, h.port);
  c.sock.write('PUT /missing/up.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n');
  const text = await c.until(/HTTP\/1\.1 409/);
  assert.ok(!text.includes('100 Continue'));
  assert.match(text, /Connection: close/i);
  c.sock.destroy();
});

test("Node's http client with Expect: 100-continue uploads through the 'continue' event", async (t) => {
  const h = await startServer(t);
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request({ port: h.port, host: '127.0.0.1', method: 'PUT', path: '/c.bin', headers: { expect: '100-continue', 'content-length': 3 } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('continue', () => req.end('abc'));
    req.flushHeaders();
    req.on('error', reject);
    setTimeout(() => req.destroy(new Error('no answer')), 5000).unref();
  });
  assert.equal(status, 201);
  assert.equal(await readFile(join(h.root, 'c.bin'), 'utf8'), 'abc');
});

test('read-only: every write method is 403, reads work, OPTIONS says class 1', async (t) => {
  const h = await startServer(t, { readOnly: true });
  await writeFile(join(h.root, 'f'), 'data');
  const lockinfo = '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>';
  const writes: [string, string, Record<string, string>, string?][] = [
    ['PUT', '/f', {}, 'x'], ['PUT', '/new', {}, 'x'], ['DELETE', '/f', {}], ['MKCOL', '/d', {}], ['COPY', '/f', { destination: '/g' }],
    ['MOVE', '/f', { destination: '/g' }], ['PROPPATCH', '/f', {}, '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:x>1</D:x></D:prop></D:set></D:propertyupdate>'],
    ['LOCK', '/f', {}, lockinfo], ['UNLOCK', '/f', { 'lock-token': '<urn:uuid:x>' }],
  ];
  for (const [m, p, headers, body] of writes) assert.equal((await h.req(m, p, { headers, body })).status, 403, `${m} ${p}`);
  assert.deepEqual(await readdir(h.root), ['f']);
  assert.equal(await readFile(join(h.root, 'f'), 'utf8'), 'data');
  assert.equal((await h.req('GET', '/f')).body, 'data');
  assert.equal((await h.req('HEAD', '/f')).status, 200);
  assert.equal((await h.req('PROPFIND', '/', { headers: { depth: '1' } })).status, 207);
  const o = await h.req('OPTIONS', '/');
  assert.equal(o.headers.dav, '1');
  assert.doesNotMatch(String(o.headers.allow), /PUT|DELETE|LOCK/);
});

test('dead properties survive a restart, exactly, and never appear as files in the share', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.root, 'f'), '');
  const body = '<D:propertyupdate xmlns:D="DAV:" xmlns:L="http://example.com/neon/litmus/"><D:set><D:prop><L:high>&#65536;\u{1F600}</L:high><L:x><L:y a="1">t</L:y></L:x></D:prop></D:set></D:propertyupdate>';
  assert.equal((await h.req('PROPPATCH', '/f', { body })).status, 207);
  const ask = '<D:propfind xmlns:D="DAV:" xmlns:L="http://example.com/neon/litmus/"><D:prop><L:high/><L:x/></D:prop></D:propfind>';
  const before = (await h.req('PROPFIND', '/f', { headers: { depth: '0' }, body: ask })).body;
  assert.ok(before.includes('\u{10000}\u{1F600}'));
  await h.server.close();
  const again = new DavServer({ root: h.root, stateDir: join(h.outside, 'state') });
  t.after(() => again.close());
  const { port } = await again.listen({ port: 0 });
  const after = (await request(port, 'PROPFIND', '/f', { headers: { depth: '0' }, body: ask })).body;
  assert.equal(after, before);
  assert.deepEqual(await readdir(h.root), ['f']);
  const moved = await request(port, 'MOVE', '/f', { headers: { destination: '/g' } });
  assert.equal(moved.status, 201);
  assert.ok((await request(port, 'PROPFIND', '/g', { headers: { depth: '0' }, body: ask })).body.includes('\u{10000}'), 'properties move with the resource');
});

test('a state directory inside the share is refused', async (t) => {
  const h = await startServer(t);
  assert.throws(() => new DavServer({ root: h.root, stateDir: join(h.root, '.state') }), /inside the shared folder/);
  await symlink(h.root, join(h.outside, 'link-to-share'));
  assert.throws(() => new DavServer({ root: h.root, stateDir: join(h.outside, 'link-to-share', 'state') }), /inside the shared folder/, 'also through a link');
});

test('a state directory that cannot be made: ready() and listen() say why, requests get 503 without host paths, the log says it once', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.outside, 'a-file'), '');
  const blocked = join(h.outside, 'a-file', 'state'); // mkdir fails (ENOTDIR) even for root, who ignores modes
  const { log, errors } = warningLog();
  const server = new DavServer({ root: h.root, stateDir: blocked, log });
  t.after(() => server.close());
  const unavailable = (e: Error & { code?: string; status?: number }) => e.code === 'DAV_ERR_STATE_UNAVAILABLE' && e.status === 503 && e.message.includes(blocked) && /ENOTDIR/.test(e.message);
  await assert.rejects(server.ready(), unavailable);
  await assert.rejects(server.listen({ port: 0 }), unavailable);
  // Connections handed over (as the mux does) are still answered.
  const handOver = net.createServer((socket) => server.handleConnection(socket));
  t.after(() => handOver.close());
  await once(handOver.listen(0, '127.0.0.1'), 'listening');
  const port = (handOver.address() as net.AddressInfo).port;
  for (const method of ['GET', 'PROPFIND']) {
    const r = await request(port, method, '/');
    assert.equal(r.status, 503, method);
    assert.ok(!r.body.includes(h.outside), `no host path in the answer: ${r.body}`);
  }
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.ok(errors[0]!.includes(blocked), errors[0]);
});

test('a read-only share needs no state directory: none is made, and it serves', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.root, 'f.txt'), 'read me');
  const missing = join(h.outside, 'never-made');
  const server = new DavServer({ root: h.root, stateDir: missing, readOnly: true });
  t.after(() => server.close());
  const { port } = await server.listen({ port: 0 });
  assert.equal((await request(port, 'GET', '/f.txt')).body, 'read me');
  assert.equal((await request(port, 'PROPFIND', '/f.txt', { headers: { depth: '0' } })).status, 207);
  assert.equal(existsSync(missing), false);
});

test('an idle keep-alive connection outlives Node’s default 5 s keep-alive timeout', { timeout: 20_000 }, async (t) => {
  const h = await startServer(t);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const sockets = new Set<unknown>();
  const track = (m: string, p: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ port: h.port, host: '127.0.0.1', method: m, path: p, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('socket', (s) => sockets.add(s));
      req.on('error', reject);
      req.end();
    });
  assert.equal(await track('OPTIONS', '/'), 200);
  await new Promise((r) => setTimeout(r, 5600));
  assert.equal(await track('OPTIONS', '/'), 200);
  assert.equal(sockets.size, 1, 'the same connection was reused');
});

test('a client that stalls in its headers gets 408; an idle connection between requests does not', { timeout: 20_000 }, async (t) => {
  const h = await startServer(t, { headersTimeout: 1000 });
  const idle = connect(t, h.port);
  idle.sock.write('OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n');
  await idle.until(/HTTP\/1\.1 200/);
  const slow = connect(t, h.port);
  slow.sock.write('PROPFIND / HTTP/1.1\r\nHost: x\r\n');
  await slow.until(/HTTP\/1\.1 408/, 5000);
  await new Promise((r) => setTimeout(r, 1500));
  idle.sock.write('OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n');
  await idle.until(/HTTP\/1\.1 200[\s\S]*HTTP\/1\.1 200/);
});

test('request headers beyond the size limit get 431', async (t) => {
  const h = await startServer(t);
  const c = connect(t, h.port);
  c.sock.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  await c.until(/HTTP\/1\.1 431/);
});

test('close() lets a request in flight finish, then stops', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.root, 'big'), Buffer.alloc(8 * 1024 * 1024, 1));
  // In flight = the server has started sending the body (a fixed delay raced the connect on a busy machine).
  const started = once(h.server, 'transfer');
  const got = request(h.port, 'GET', '/big');
  await started;
  await h.server.close();
  assert.equal((await got).raw.length, 8 * 1024 * 1024);
  await assert.rejects(request(h.port, 'OPTIONS', '/'));
  await h.server.close(); // idempotent
});

test('listen refuses a non-loopback address without authentication', async (t) => {
  const h = await startServer(t);
  await assert.rejects(h.server.listen({ host: '0.0.0.0', port: 0 }), /without authentication/);
  const a = await h.server.listen({ host: '::1', port: 0 }).catch(() => null);
  if (a) assert.equal((await propfindFrom(a.port)).status, 207);
});

function propfindFrom(port: number) {
  return new Promise<{ status: number }>((resolve, reject) => {
    const req = http.request({ host: '::1', port, method: 'PROPFIND', path: '/', headers: { depth: '0', 'content-length': Buffer.byteLength(propfindBody('getetag')) } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    req.on('error', reject);
    req.end(propfindBody('getetag'));
  });
}

/** A server whose share holds `small/`, a 1 MiB tmpfs standing for a full disk; null when skipped. Unmount in a finally. */
async function withSmallDisk(t: test.TestContext): Promise<{ h: Harness; small: string } | null> {
  const h = await startServer(t);
  const small = join(h.root, 'small');
  await mkdir(small);
  return mountTmpfs(t, small, '1m') ? { h, small } : null;
}

test('out of file descriptors: a GET gets 503 (try again), not 500, and succeeds once files are closed', async (t) => {
  // In a child under a low descriptor limit, so that running out of them touches nothing else. One kept-alive
  // connection is open before the child takes every free descriptor; the server's open() of the file then fails.
  const root = await tempDir(t);
  await writeFile(join(root, 'f'), 'content');
  const script = `
    import http from 'node:http';
    import { openSync, closeSync } from 'node:fs';
    import { DavServer } from ${JSON.stringify(new URL('../../../dav/index.js', import.meta.url).href)};
    const server = new DavServer({ root: process.argv[1], readOnly: true });
    const { port } = await server.listen({ port: 0 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () => new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/f', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode, body, retryAfter: res.headers['retry-after'] }));
      }).on('error', reject);
    });
    const replies = [await get()];
    const held = [];
    try {
      for (;;) held.push(openSync('/dev/null', 'r'));
    } catch (err) {
      if (err.code !== 'EMFILE') throw err;
    }
    replies.push(await get());
    for (const fd of held) closeSync(fd);
    replies.push(await get());
    agent.destroy();
    await server.close();
    console.log(JSON.stringify(replies));`;
  const child = spawnSync('prlimit', ['--nofile=128:128', process.execPath, '--input-type=module', '-e', script, root], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(child.status, 0, child.stderr);
  const [before, starved, after] = JSON.parse(child.stdout) as { status: number; body: string; retryAfter?: string }[];
  assert.deepEqual(before, { status: 200, body: 'content' });
  assert.equal(starved?.status, 503, starved?.body);
  assert.match(starved?.body ?? '', /too many files open.*EMFILE/);
  assert.equal(starved?.retryAfter, '1', 'the 503 tells the client when to try again');
  assert.deepEqual(after, { status: 200, body: 'content' });
});

test('a full disk: PUT gets 507, the old file stays, no temporary file is left, and the space comes back', { timeout: 30_000 }, async (t) => {
  const disk = await withSmallDisk(t);
  if (!disk) return;
  const { h, small } = disk;
  try {
    await writeFile(join(small, 'old.txt'), 'the old content');
    // Chunked: the server learns the size only as the disk fills up (ENOSPC part-way).
    const big = Buffer.alloc(2 * 1024 * 1024, 0x61);
    const replace = await chunkedPut(h.port, '/small/old.txt', big);
    assert.equal(replace.status, 507, replace.body);
    assert.match(replace.body, /no space left/);
    assert.equal(await readFile(join(small, 'old.txt'), 'utf8'), 'the old content');
    const created = await chunkedPut(h.port, '/small/new.bin', big);
    assert.equal(created.status, 507);
    assert.deepEqual((await readdir(small)).sort(), ['old.txt'], 'no partial file, no temporary file');
    // The space of the failed uploads is free again: a file that fits goes through.
    const fits = await h.req('PUT', '/small/fits.bin', { body: Buffer.alloc(900 * 1024, 0x62) });
    assert.equal(fits.status, 201);
    assert.equal((await h.req('GET', '/small/old.txt')).body, 'the old content');
  } finally {
    unmountTmpfs(small);
  }
});

test('an upload bigger than the free space is refused before its body: Content-Length, Expect 100-continue, Finder\'s X-Expected-Entity-Length', { timeout: 30_000 }, async (t) => {
  const disk = await withSmallDisk(t);
  if (!disk) return;
  const { h, small } = disk;
  try {
    await writeFile(join(small, 'old.txt'), 'the old content');
    const size = 2 * 1024 * 1024;
    // With Expect: 100-continue the client is told before it sends a byte.
    let continued = false;
    const answer = await new Promise<Reply>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: h.port, method: 'PUT', path: '/small/old.txt', headers: { 'content-length': size, expect: '100-continue' }, agent: false });
      req.on('continue', () => {
        continued = true;
        req.end(Buffer.alloc(size, 0x61));
      });
      req.on('response', (res) => readReply(res).then(resolve, reject));
      req.on('error', reject);
      req.flushHeaders();
    });
    assert.equal(answer.status, 507, answer.body);
    assert.equal(continued, false, 'no 100 Continue: the body was never asked for');
    assert.match(answer.body, /^no space left for \/small\/old\.txt on the host: the upload is 2,097,152 bytes, [\d,]+ are free\n$/);
    // A chunked upload that says its size the way macOS Finder does: answered on its headers alone.
    const finder = await chunkedPut(h.port, '/small/finder.bin', Buffer.alloc(0), { 'x-expected-entity-length': String(size), 'transfer-encoding': 'chunked' }, true);
    assert.equal(finder.status, 507, finder.body);
    assert.equal(await readFile(join(small, 'old.txt'), 'utf8'), 'the old content');
    assert.deepEqual((await readdir(small)).sort(), ['old.txt'], 'nothing made');
    // What fits goes through, by Content-Length as by the Finder hint.
    assert.equal((await h.req('PUT', '/small/fits.bin', { body: Buffer.alloc(1024 * 1024 - 64 * 1024, 0x62) })).status, 201);
    assert.equal((await chunkedPut(h.port, '/small/fits-too.bin', Buffer.alloc(2048, 0x63), { 'x-expected-entity-length': '2048' })).status, 201);
  } finally {
    unmountTmpfs(small);
  }
});

test('a full disk: COPY over a file or a collection keeps it whole and leaves nothing partial; MOVE across file systems too', { timeout: 30_000 }, async (t) => {
  const disk = await withSmallDisk(t);
  if (!disk) return;
  const { h, small } = disk;
  const names = async () => (await readdir(small)).sort();
  try {
    // A file over a file: 600 KiB more do not fit in the 1 MiB.
    await writeFile(join(small, 'src.bin'), Buffer.alloc(600 * 1024, 1));
    await writeFile(join(small, 'dst.txt'), 'the old destination');
    const over = await h.req('COPY', '/small/src.bin', { headers: { destination: '/small/dst.txt', overwrite: 'T' } });
    assert.equal(over.status, 507, over.body);
    assert.equal(await readFile(join(small, 'dst.txt'), 'utf8'), 'the old destination');
    assert.equal((await h.req('COPY', '/small/src.bin', { headers: { destination: '/small/new.bin' } })).status, 507);
    assert.deepEqual(await names(), ['dst.txt', 'src.bin'], 'no partial copy, no temporary file');

    // A collection over a collection: the first member fits, the second does not.
    await rm(join(small, 'src.bin'));
    await mkdir(join(small, 'tree'));
    await writeFile(join(small, 'tree', 'a.bin'), Buffer.alloc(300 * 1024, 2));
    await writeFile(join(small, 'tree', 'b.bin'), Buffer.alloc(300 * 1024, 3));
    await mkdir(join(small, 'old'));
    await writeFile(join(small, 'old', 'keep.txt'), 'kept');
    const tree = await h.req('COPY', '/small/tree/', { headers: { destination: '/small/old/', overwrite: 'T' } });
    assert.equal(tree.status, 507, tree.body);
    assert.deepEqual(await readdir(join(small, 'old')), ['keep.txt']);
    assert.equal(await readFile(join(small, 'old', 'keep.txt'), 'utf8'), 'kept');
    assert.deepEqual(await names(), ['dst.txt', 'old', 'tree']);

    // MOVE of a file from the share's disk over a file on the full one: a copy underneath, which fails.
    await writeFile(join(h.root, 'big.bin'), Buffer.alloc(600 * 1024, 4));
    const moved = await h.req('MOVE', '/big.bin', { headers: { destination: '/small/dst.txt', overwrite: 'T' } });
    assert.equal(moved.status, 507, moved.body);
    assert.equal(await readFile(join(small, 'dst.txt'), 'utf8'), 'the old destination');
    assert.equal((await readFile(join(h.root, 'big.bin'))).length, 600 * 1024, 'the source stays');
    assert.deepEqual(await names(), ['dst.txt', 'old', 'tree']);

    // With room, the same cross-device MOVE replaces the file and removes the source.
    await rm(join(small, 'tree'), { recursive: true });
    const ok = await h.req('MOVE', '/big.bin', { headers: { destination: '/small/dst.txt', overwrite: 'T' } });
    assert.equal(ok.status, 204, ok.body);
    assert.equal((await readFile(join(small, 'dst.txt'))).length, 600 * 1024);
    assert.deepEqual((await readdir(h.root)).filter((n) => n !== 'small'), []);
  } finally {
    unmountTmpfs(small);
  }
});

test('the host moves the folder a MOVE across file systems goes to: the old file and the source stay, no temporary travels', { timeout: 30_000 }, async (t) => {
  const h = await startServer(t);
  const disk = join(h.root, 'disk');
  await mkdir(disk);
  if (!mountTmpfs(t, disk, '1g')) return;
  try {
    await mkdir(join(disk, 'photos'));
    await writeFile(join(disk, 'photos', 'dst.bin'), 'the old destination');
    // Big enough that the copy underneath is still running when the folder moves.
    await writeFile(join(h.root, 'big.bin'), Buffer.alloc(256 * 1024 * 1024, 5));
    const move = h.req('MOVE', '/big.bin', { headers: { destination: '/disk/photos/dst.bin', overwrite: 'T' } });
    await until(async () => (await readdir(join(disk, 'photos'))).some((n) => n.startsWith('.spicedav-')), 'the move’s temporary');
    await rename(join(disk, 'photos'), join(disk, 'sorted'));
    const r = await move;
    assert.equal(r.status, 409, r.body);
    assert.match(r.body, /moved or deleted on the host during the move/);
    assert.equal((await stat(join(h.root, 'big.bin'))).size, 256 * 1024 * 1024, 'the source stays');
    assert.equal(await readFile(join(disk, 'sorted', 'dst.bin'), 'utf8'), 'the old destination');
    if (process.platform === 'linux') assert.deepEqual(await readdir(join(disk, 'sorted')), ['dst.bin'], 'nothing left in the moved folder');
  } finally {
    unmountTmpfs(disk);
  }
});

test('the share root removed while serving: every request is 503 naming it, the host log says so, and serving resumes when it is back', async (t) => {
  const { log, warnings } = warningLog();
  const h = await startServer(t, { log });
  await mkdir(join(h.root, 'dir'));
  await writeFile(join(h.root, 'dir', 'f.txt'), 'before');
  assert.equal((await h.req('GET', '/dir/f.txt')).body, 'before');
  const hrefs = async () => [...(await h.req('PROPFIND', '/', { headers: { depth: '1' }, body: propfindBody('resourcetype') })).body.matchAll(/<D:href>([^<]*)</g)].map((m) => m[1]).sort();
  assert.deepEqual(await hrefs(), ['/', '/dir/'], 'the root listed (and cached) before it goes');
  await rm(h.root, { recursive: true });
  for (const [method, path, body] of [['PROPFIND', '/'], ['GET', '/dir/f.txt'], ['GET', '/f.txt'], ['PUT', '/new.txt', 'x'], ['MKCOL', '/d']] as const) {
    const r = await h.req(method, path, { body });
    assert.equal(r.status, 503, `${method} ${path}`);
    assert.match(r.body, /share root .* has disappeared/);
    // Only the host user can bring it back: no Retry-After to keep a client polling.
    assert.equal(r.headers['retry-after'], undefined);
  }
  assert.ok(warnings.length >= 5 && warnings.every((w) => /has disappeared/.test(w)), warnings.join('\n'));
  await mkdir(join(h.root, 'dir'), { recursive: true });
  await writeFile(join(h.root, 'dir', 'f.txt'), 'after');
  await writeFile(join(h.root, 'other.txt'), 'new');
  assert.equal((await h.req('GET', '/dir/f.txt')).body, 'after');
  assert.deepEqual(await hrefs(), ['/', '/dir/', '/other.txt'], 'the new root is listed, not the old listing');
  assert.equal((await h.req('GET', '/missing.txt')).status, 404);
});

test('temporaries a dead process left (a day old) are removed when their folder is listed; ones in use are not', { timeout: 30_000 }, async (t) => {
  const h = await startServer(t);
  const dayAgo = (Date.now() - 25 * 3600 * 1000) / 1000;
  const staleFile = join(h.root, '.spicedav-00000000deadbeef.part');
  const staleDir = join(h.root, '.spicedav-00000000deadbee0.part');
  const fresh = join(h.root, '.spicedav-00000000000f4e54.part');
  await writeFile(staleFile, Buffer.alloc(4096));
  await mkdir(staleDir);
  await writeFile(join(staleDir, 'half-copied.txt'), 'x');
  await writeFile(fresh, 'an upload of another process, just started');
  for (const p of [staleFile, staleDir]) await utimes(p, dayAgo, dayAgo);

  // An upload of this server, paused half-way, whose temporary looks a day old: in use, so it stays.
  const upload = pausedPut(h.port, '/slow.bin', Buffer.alloc(200_000, 7));
  try {
    let own: string | undefined;
    await until(async () => {
      own = (await readdir(h.root)).find((n) => /^\.spicedav-.*\.part$/.test(n) && ![staleFile, staleDir, fresh].includes(join(h.root, n)));
      return own !== undefined;
    }, 'the paused upload’s temporary');
    assert.ok(own);
    await utimes(join(h.root, own), dayAgo, dayAgo);

    const listing = await h.req('PROPFIND', '/', { headers: { depth: '1' } });
    assert.equal(listing.status, 207);
    assert.doesNotMatch(listing.body, /spicedav-/, 'temporaries are never listed');
    // Each stale temporary is removed by a task of its own: wait for both.
    const staleGone = async () => !(await readdir(h.root)).some((n) => n.startsWith('.spicedav-00000000deadbe'));
    await until(staleGone, 'the stale temporaries to be removed');
    const left = (await readdir(h.root)).sort();
    assert.ok(left.includes('.spicedav-00000000000f4e54.part'), 'a recent one (maybe another server) stays');
    assert.ok(left.includes(own), 'the one in use stays');

    assert.equal((await upload.finish()).status, 201);
    assert.equal((await readFile(join(h.root, 'slow.bin'))).length, 200_000);
  } finally {
    upload.abort();
  }
});

test("a Windows client moving a file over 50 MB gets the WebClient size-limit fix in the log, once", async (t) => {
  const windows = { 'user-agent': 'Microsoft-WebDAV-MiniRedir/10.0.19045' };
  const a = warningLog();
  const h = await startServer(t, { log: a.log });
  const big = join(h.root, 'big.iso');
  await writeFile(big, '');
  await truncate(big, 50_000_001);
  await writeFile(join(h.root, 'small.txt'), 'x');
  // HEAD, a small file, another client: nothing to say.
  assert.equal((await h.req('HEAD', '/big.iso', { headers: windows })).status, 200);
  assert.equal((await h.req('GET', '/small.txt', { headers: windows })).status, 200);
  assert.equal((await h.req('GET', '/big.iso', { headers: { 'user-agent': 'curl/8.5.0', range: 'bytes=0-0' } })).status, 206);
  assert.deepEqual(a.warnings, []);
  // WebClient judges the file's size, so any GET of it by Windows gets the hint; the second one does not repeat it.
  assert.equal((await h.req('GET', '/big.iso', { headers: { ...windows, range: 'bytes=0-0' } })).status, 206);
  assert.equal((await h.req('GET', '/big.iso', { headers: { ...windows, range: 'bytes=1-1' } })).status, 206);
  assert.equal(a.warnings.length, 1, a.warnings.join('\n'));
  assert.match(a.warnings.join('\n'), /over 50 MB.*0x800700DF.*webclient-filesize\.reg/);

  // An upload announces its size in its headers: the hint comes before the body (here cut off at once).
  const b = warningLog();
  const h2 = await startServer(t, { log: b.log });
  const put = http.request({ host: '127.0.0.1', port: h2.port, method: 'PUT', path: '/up.iso', headers: { ...windows, 'content-length': 60_000_000 } });
  put.on('error', () => {});
  put.write('partial');
  await until(() => b.warnings.length > 0, 'the hint');
  // Cut once the upload is being written, so that cleaning up after it is tested too.
  await until(async () => (await readdir(h2.root)).some((n) => n.startsWith('.spicedav-')), 'the upload’s temporary');
  put.destroy();
  assert.equal(b.warnings.length, 1);
  await until(async () => (await readdir(h2.root)).length === 0, 'the cut upload’s temporary to be removed');
  assert.deepEqual(await readdir(h2.root), [], 'the cut upload left nothing');
});

test('a conditional PUT whose target changes on the host during the upload gets 412 and replaces nothing', async (t) => {
  const h = await startServer(t);
  const file = join(h.root, 'doc.txt');
  await writeFile(file, 'version 1');
  const etag = (await h.req('HEAD', '/doc.txt')).headers.etag as string;
  const body = Buffer.alloc(100_000, 0x61);
  const waitForTemp = async () => {
    await until(async () => (await readdir(h.root)).some((n) => n.startsWith('.spicedav-')), 'the upload’s temporary');
  };
  const uploads: ReturnType<typeof pausedPut>[] = [];
  try {
    // If-Match (what davfs2 sends when it saves a file it has cached): the host edits the file meanwhile.
    const ifMatch = pausedPut(h.port, '/doc.txt', body, { 'if-match': etag });
    uploads.push(ifMatch);
    await waitForTemp();
    await writeFile(file, 'version 2, saved on the host');
    const r1 = await ifMatch.finish();
    assert.equal(r1.status, 412, r1.body);
    assert.match(r1.body, /changed on the host while the upload was arriving/);
    assert.equal(await readFile(file, 'utf8'), 'version 2, saved on the host');

    // If-None-Match: * (create only): the host creates the file meanwhile.
    const createOnly = pausedPut(h.port, '/new.txt', body, { 'if-none-match': '*' });
    uploads.push(createOnly);
    await waitForTemp();
    await writeFile(join(h.root, 'new.txt'), 'made on the host');
    assert.equal((await createOnly.finish()).status, 412);
    assert.equal(await readFile(join(h.root, 'new.txt'), 'utf8'), 'made on the host');

    // Without interference both kinds succeed, and an unconditional PUT still wins over a host edit.
    const current = (await h.req('HEAD', '/doc.txt')).headers.etag as string;
    assert.equal((await h.req('PUT', '/doc.txt', { body: 'version 3', headers: { 'if-match': current } })).status, 204);
    assert.equal((await h.req('PUT', '/other.txt', { body: 'x', headers: { 'if-none-match': '*' } })).status, 201);
    const plain = pausedPut(h.port, '/doc.txt', body);
    uploads.push(plain);
    await waitForTemp();
    await writeFile(file, 'version 4, saved on the host');
    assert.equal((await plain.finish()).status, 204);
    assert.equal((await readFile(file)).length, body.length);
    assert.deepEqual((await readdir(h.root)).filter((n) => n.startsWith('.spicedav-')), [], 'no temporary left');
  } finally {
    for (const u of uploads) u.abort();
  }
});

test('the host moves the folder an upload goes to: 409, nothing stored, and the temporary does not travel with the folder', async (t) => {
  const h = await startServer(t);
  await mkdir(join(h.root, 'photos'));
  const body = Buffer.alloc(100_000, 0x61);
  for (const headers of [{}, { 'if-none-match': '*' }] as Record<string, string>[]) {
    const upload = pausedPut(h.port, '/photos/new.jpg', body, headers);
    try {
      await until(async () => (await readdir(join(h.root, 'photos'))).some((n) => n.startsWith('.spicedav-')), 'the upload’s temporary');
      await rename(join(h.root, 'photos'), join(h.root, 'sorted'));
      const r = await upload.finish();
      assert.equal(r.status, 409, r.body);
      assert.match(r.body, /moved or deleted on the host during the upload/);
    } finally {
      upload.abort();
    }
    // On Linux the server finds the temporary where the folder went, through its open descriptor.
    const left = await readdir(join(h.root, 'sorted'));
    if (process.platform === 'linux') assert.deepEqual(left, [], `${JSON.stringify(headers)}: nothing left in the moved folder`);
    await rm(join(h.root, 'sorted'), { recursive: true });
    await mkdir(join(h.root, 'photos'));
  }
});

test('the host moves the folder a COPY goes to: nothing is placed, and the temporary does not travel with the folder', async (t) => {
  const h = await startServer(t);
  // A tree big enough that the copy is still running when the folder moves.
  await mkdir(join(h.root, 'src'));
  for (let i = 0; i < 1500; i++) await writeFile(join(h.root, 'src', `f${i}`), `file ${i}`);
  await mkdir(join(h.root, 'photos'));
  const copy = h.req('COPY', '/src/', { headers: { destination: '/photos/copy/' } });
  await until(async () => (await readdir(join(h.root, 'photos'))).some((n) => n.startsWith('.spicedav-')), 'the copy’s temporary');
  await rename(join(h.root, 'photos'), join(h.root, 'sorted'));
  const r = await copy;
  assert.equal(r.status, 409, r.body);
  assert.match(r.body, /moved or deleted on the host during the copy/);
  // On Linux the server finds the temporary where the folder went, through the folder's open descriptor.
  if (process.platform === 'linux') assert.deepEqual(await readdir(join(h.root, 'sorted')), [], 'nothing left in the moved folder');
});
