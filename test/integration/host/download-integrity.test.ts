import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { get } from 'node:http';
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

// Regression: GET bodies once reused their read buffers as soon as a write called back. Through the mux a
// callback does not mean the bytes have left, so downloads through `share` came out corrupted while direct
// HTTP was fine. The whole host→guest chain runs here in one process; several downloads at once and a slow
// reader make the queues hold buffers as long as they can.
test('downloads through share → mux → guest are byte-exact (buffers are never reused while queued)', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const data = randomBytes(24 << 20);
  await writeFile(join(dir, 'big.bin'), data);
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
  const url = `http://127.0.0.1:${proxy.addresses[0]!.port}/big.bin`;
  const results = await Promise.all([download(url, false), download(url, true), download(url, false)]);
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.bytes, data.length);
    assert.equal(r.sha, sha256(data), 'the body is the file, byte for byte');
  }
});
