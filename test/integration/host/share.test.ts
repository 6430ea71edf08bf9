import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../../helpers/tmp.js';
import { MuxSession } from '../../../mux/index.js';
import { DavServer } from '../../../dav/index.js';
import { Share, createMemoryTransport, type TransportState } from '../../../src/host/index.js';

/** One HTTP request from the guest side: a fresh mux channel is the TCP connection. */
async function guestRequest(mux: MuxSession, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<{ res: IncomingMessage; body: Buffer }> {
  const channel = mux.open();
  // The guest's mux session ending later destroys the channel with an error; the request has its own handling.
  channel.on('error', () => {});
  const req = request({ method, path, headers: { Host: 'localhost:9843', ...headers }, createConnection: () => channel as unknown as Socket });
  const timer = setTimeout(() => req.destroy(new Error(`${method} ${path} timed out`)), 10_000);
  try {
    req.end(body);
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return { res, body: Buffer.concat(chunks) };
  } finally {
    clearTimeout(timer);
  }
}

/** A Share over a fresh memory transport serving `root`, and a way to attach a guest-role mux session. */
async function shareWithGuest(t: TestContext, root: string) {
  const dav = new DavServer({ root, stateDir: false, cache: false });
  const { transport, guestEnd } = createMemoryTransport();
  const share = new Share({ dav, transport });
  const states: TransportState[] = [];
  share.on('state', (s: TransportState) => states.push(s));
  share.start();
  t.after(() => share.close());
  const abort = new AbortController();
  t.after(() => abort.abort());
  const attach = async () => new MuxSession(await guestEnd.open(abort.signal), { role: 'guest' });
  return { share, transport, states, attach };
}

test('Share over the memory transport: PROPFIND and GET from a guest-role mux reach the folder; a new link works after a drop', { timeout: 30_000 }, async (t) => {
  const root = await tempDir(t);
  await writeFile(join(root, 'hello.txt'), 'hello from the host\n');
  const { share, transport, states, attach } = await shareWithGuest(t, root);
  let mux = await attach();
  assert.equal(share.state.state, 'linked');

  const propfind = await guestRequest(mux, 'PROPFIND', '/', { Depth: '1' });
  assert.equal(propfind.res.statusCode, 207);
  assert.match(propfind.body.toString(), /hello\.txt/);

  const get = await guestRequest(mux, 'GET', '/hello.txt');
  assert.equal(get.res.statusCode, 200);
  assert.equal(get.body.toString(), 'hello from the host\n');

  const stats = share.stats;
  assert.equal(stats.links, 1);
  assert.equal(stats.linked, true);
  assert.equal(stats.channelsTotal, 2);
  assert.ok(stats.bytesIn > 0 && stats.bytesOut > 'hello from the host\n'.length);

  // The port closes (guest daemon restart, VM reboot): the session ends, the guest reopens, requests work again.
  const unlinked = once(share, 'unlink');
  const guestClosed = once(mux, 'close');
  transport.drop();
  await unlinked;
  await guestClosed;
  assert.equal(share.stats.linked, false);
  assert.equal(share.state.state, 'waiting');

  mux = await attach();
  const again = await guestRequest(mux, 'GET', '/hello.txt');
  assert.equal(again.res.statusCode, 200);
  assert.equal(share.stats.links, 2);
  assert.ok(share.stats.bytesOut >= 2 * 'hello from the host\n'.length, 'totals survive the reconnect');

  await share.close();
  assert.equal(share.state.state, 'closed');
  assert.deepEqual([...new Set(states.map((s) => s.state))], ['waiting', 'linked', 'closed']);
});

test('Share over the memory transport: PUT of 300 kB from the guest lands in the folder', { timeout: 30_000 }, async (t) => {
  const root = await tempDir(t);
  const { share, attach } = await shareWithGuest(t, root);
  const mux = await attach();
  const payload = Buffer.alloc(300_000, 'x');
  const put = await guestRequest(mux, 'PUT', '/up.bin', { 'Content-Length': String(payload.length) }, payload);
  assert.equal(put.res.statusCode, 201);
  assert.deepEqual(await readFile(join(root, 'up.bin')), payload);
  assert.ok(share.stats.bytesIn >= payload.length);
});
