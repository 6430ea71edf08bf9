import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { get, request } from 'node:http';
import { connect } from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { join } from 'node:path';
import { DavServer } from '../../../dav/index.js';
import { createMemoryTransport, Share } from '../../../src/host/index.js';
import { GuestProxy } from '../../../src/guest/index.js';
import { tempDir } from '../../helpers/tmp.js';

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** GET url; hash the body as it arrives, reading slowly when `slow` so the chain's queues fill up. */
function download(url: string, slow: boolean): Promise<{ status: number; sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      res.on('data', (d: Buffer) => {
        h.update(d);
        bytes += d.length;
        if (slow && bytes % (4 << 20) < d.length) {
          res.pause();
          setTimeout(() => res.resume(), 20);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sha: h.digest('hex'), bytes }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** PUT `body` to url in 1 MiB writes, honouring backpressure; resolves with the status. */
function upload(url: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers: { 'Content-Length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    (async () => {
      for (let at = 0; at < body.length; at += 1 << 20) {
        if (!req.write(body.subarray(at, at + (1 << 20)))) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch(reject);
  });
}

/** The whole host→guest chain in one process (as `spicedav demo`): DavServer, Share, memory transport, GuestProxy. */
async function chain(t: TestContext, dir: string): Promise<string> {
  const dav = new DavServer({ root: dir, stateDir: false });
  const { transport, guestEnd } = createMemoryTransport();
  const share = new Share({ dav, transport });
  share.start();
  const proxy = new GuestProxy({ device: guestEnd, port: 0, hosts: ['127.0.0.1'], mdns: false });
  await proxy.start();
  t.after(async () => {
    await proxy.close();
    await share.close();
    await dav.close();
  });
  return `http://127.0.0.1:${proxy.addresses[0]!.port}`;
}

// Regression: GET bodies once reused their read buffers as soon as a write called back. Through the mux a
// callback does not mean the bytes have left, so downloads through `share` came out corrupted while direct
// HTTP was fine. The whole host→guest chain runs here in one process; several downloads at once and a slow
// reader make the queues hold buffers as long as they can.
test('downloads through share → mux → guest are byte-exact (buffers are never reused while queued)', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const data = randomBytes(24 << 20);
  await writeFile(join(dir, 'big.bin'), data);
  const url = `${await chain(t, dir)}/big.bin`;
  const results = await Promise.all([download(url, false), download(url, true), download(url, false)]);
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.bytes, data.length);
    assert.equal(r.sha, sha256(data), 'the body is the file, byte for byte');
  }
});

// Regression: the guest's upload pump reads each local connection into buffers it reuses once their frame's
// write called back. Over the in-memory transport that callback comes while the host's demultiplexer still holds
// the buffer itself (its payloads are views of it), so `spicedav demo` stored uploads with stretches of later
// bytes in them. The pump now runs only over ports whose writes copy; here, four uploads at once.
test('uploads through guest → mux → share are byte-exact (the guest reuses no buffer the host still holds)', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const base = await chain(t, dir);
  const bodies = Array.from({ length: 4 }, () => randomBytes(16 << 20));
  const statuses = await Promise.all(bodies.map((b, i) => upload(`${base}/up${i}.bin`, b)));
  for (const [i, body] of bodies.entries()) {
    assert.equal(statuses[i], 201);
    assert.equal(sha256(await readFile(join(dir, `up${i}.bin`))), sha256(body), 'the stored file is the body, byte for byte');
  }
});

// A file that gets shorter while it is sent cannot be finished: the server gives up on the connection, and the
// host's size-0 reaches the guest in the middle of the response. The guest once kept the local connection (as
// spice-webdavd does between responses), and the client waited for the missing bytes until its own timeout.
test('a download the host gives up on mid-body ends at once for the guest client, not at its timeout', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'shrinks.bin');
  await writeFile(file, Buffer.alloc(256 << 20, 0x61));
  const url = `${await chain(t, dir)}/shrinks.bin`;
  const outcome = await new Promise<{ bytes: number; how: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the client is still waiting 15 s after the cut')), 15_000);
    get(url, (res) => {
      assert.equal(res.statusCode, 200);
      let bytes = 0;
      const done = (how: string): void => {
        clearTimeout(timer);
        resolve({ bytes, how });
      };
      res.once('data', () => {
        // The queues along the chain hold some of the file; what the server has yet to read is gone.
        res.pause();
        truncate(file, 0).then(() => setTimeout(() => res.resume(), 200), reject);
      });
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('error', () => done('error'));
      res.on('end', () => done(res.complete ? 'complete' : 'cut'));
    }).on('error', reject);
  });
  assert.notEqual(outcome.how, 'complete', 'the response cannot have been whole');
  assert.ok(outcome.bytes < 256 << 20, `${outcome.bytes} bytes arrived`);
});

// An HTTP/1.0 client, or any that reads to the end of the connection (`printf 'GET /f HTTP/1.0\r\n\r\n' | nc`):
// the server answers with Connection: close and closes, and the guest must pass that close on.
test('an HTTP/1.0 request through the chain ends with the connection, as from the server itself', { timeout: 30_000 }, async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'f.txt'), 'file body');
  const url = new URL(await chain(t, dir));
  const socket = connect(Number(url.port), url.hostname);
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.write('GET /f.txt HTTP/1.0\r\n\r\n');
  const closed = await Promise.race([once(socket, 'close').then(() => true), new Promise((r) => setTimeout(r, 5000, false).unref())]);
  socket.destroy();
  const text = Buffer.concat(chunks).toString();
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.ok(text.endsWith('\r\n\r\nfile body'), 'the whole response');
  assert.equal(closed, true, 'the connection closed after the response');
});
