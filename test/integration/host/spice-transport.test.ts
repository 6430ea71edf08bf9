import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeSpiceServer } from './fake-spice-server.js';
import { tempDir } from '../../helpers/tmp.js';
import { encodeFrame, MuxSession } from '../../../mux/index.js';
import { DavServer } from '../../../dav/index.js';
import { connectSpice, spiceConstants as C } from '../../../src/spice/index.js';
import { Share, SpiceTransport } from '../../../src/host/index.js';
import { hasCode } from '../../../src/errors.js';
import { waitState } from '../../helpers/transport.js';

function bounded<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms))),
  ]);
}

async function fakeServer(t: TestContext, options: ConstructorParameters<typeof FakeSpiceServer>[0] = {}) {
  const fake = new FakeSpiceServer(options);
  const port = await fake.listen();
  t.after(() => fake.close());
  return { fake, port };
}

const fast = { initialDelayMs: 50, maxDelayMs: 200 };

test('spice transport: a link per port OPENED, ended by CLOSED and BREAK; one SPICEVMC_DATA per mux frame; PINGs answered', { timeout: 20_000 }, async (t) => {
  const { fake, port } = await fakeServer(t, { password: 'pw' });
  const tr = new SpiceTransport({ host: '127.0.0.1', port, password: 'pw', reconnect: fast });
  t.after(() => tr.close());
  tr.start();
  await waitState(tr, (s) => s.state === 'waiting', 'the guest wait');
  assert.deepEqual(fake.pongs, [3], 'the 250 KiB network-test PING got its PONG');

  const linked = once(tr, 'link') as Promise<[Duplex]>;
  fake.portEvent(C.SPICE_PORT_EVENT_OPENED);
  const [l1] = await bounded(linked, 'the first link');
  assert.equal(tr.state.state, 'linked');

  // A mux frame written as [header, payload] under cork leaves as exactly one SPICEVMC_DATA message.
  const [h, p] = encodeFrame(5n, Buffer.from('abc')) as [Buffer, Buffer];
  const before = fake.dataMessages.length;
  l1.cork();
  l1.write(h);
  l1.write(p);
  l1.uncork();
  await bounded(once(fake.guest as Duplex, 'data'), 'the frame at the server');
  assert.equal(fake.dataMessages.length, before + 1);
  assert.deepEqual(fake.dataMessages.at(-1), Buffer.concat([h, p]));

  (fake.guest as Duplex).write(Buffer.from('from guest'));
  const [got] = (await bounded(once(l1, 'data'), 'guest bytes')) as [Buffer];
  assert.equal(got.toString(), 'from guest');

  fake.portEvent(C.SPICE_PORT_EVENT_CLOSED);
  await bounded(once(l1, 'close'), 'the link to end on CLOSED');
  await waitState(tr, (s) => s.state === 'waiting', 'waiting again');

  const relinked = once(tr, 'link') as Promise<[Duplex]>;
  fake.portEvent(C.SPICE_PORT_EVENT_OPENED);
  const [l2] = await bounded(relinked, 'the second link');
  assert.notEqual(l2, l1);
  fake.portEvent(C.SPICE_PORT_EVENT_BREAK);
  await bounded(once(l2, 'close'), 'the link to end on BREAK');

  // The server drops us while it still listens: taken for a viewer; we wait the longest delay, then relink.
  fake.dropAll();
  const taken = await waitState(tr, (s) => s.state === 'retrying', 'the drop');
  assert.ok(hasCode(taken.error, 'HOST_ERR_VIEWER_CONNECTED'));
  assert.equal(taken.retryInMs, fast.maxDelayMs);
  await waitState(tr, (s) => s.state === 'waiting', 'relinking');
});

test('spice transport: no webdav channel → a waiting state that says what to add; a hot-plugged one is picked up', { timeout: 20_000 }, async (t) => {
  const { fake, port } = await fakeServer(t, { channels: [{ type: 2, id: 0 }], opened: true });
  const tr = new SpiceTransport({ host: '127.0.0.1', port, reconnect: fast });
  t.after(() => tr.close());
  tr.start();
  const s = await waitState(tr, (x) => x.state === 'waiting', 'the missing-port state');
  assert.ok(hasCode(s.error, 'HOST_ERR_NO_WEBDAV_PORT'));
  assert.match(s.error?.message ?? '', /virtserialport.*<channel type='spiceport'>/s);
  const linked = once(tr, 'link');
  fake.hotplug([{ type: C.SPICE_CHANNEL_WEBDAV, id: 0 }]);
  await bounded(linked, 'the link on the hot-plugged port');
});

test('Share through SPICE: a guest GET crosses SPICEVMC_DATA both ways, and every message carries whole mux frames', { timeout: 20_000 }, async (t) => {
  const root = await tempDir(t);
  await writeFile(join(root, 'big.bin'), Buffer.alloc(200_000, 'b'));
  const { fake, port } = await fakeServer(t, { opened: true });
  const share = new Share({ dav: new DavServer({ root, stateDir: false, cache: false }), transport: new SpiceTransport({ host: '127.0.0.1', port, reconnect: fast }) });
  t.after(() => share.close());
  const linked = once(share, 'link');
  share.start();
  await bounded(linked, 'the link');
  const mux = new MuxSession(fake.guest as Duplex, { role: 'guest' });
  const channel = mux.open();
  channel.on('error', () => {});
  const req = request({ method: 'GET', path: '/big.bin', headers: { Host: 'localhost' }, createConnection: () => channel as unknown as Socket });
  req.end();
  const [res] = (await bounded(once(req, 'response'), 'the response')) as [IncomingMessage];
  assert.equal(res.statusCode, 200);
  let n = 0;
  for await (const c of res) n += (c as Buffer).length;
  assert.equal(n, 200_000);
  assert.ok(share.stats.bytesOut >= 200_000);

  // Frames the host wrote one by one were never split across messages (spice-gtk sends one frame per message).
  for (const m of fake.dataMessages) {
    let off = 0;
    while (off < m.length) off += 10 + m.readUInt16LE(off + 8);
    assert.equal(off, m.length, 'a message ends on a frame boundary');
  }
});

test('port stream backpressure: the socket is not read while the stream consumer is full', { timeout: 20_000 }, async (t) => {
  const { fake, port } = await fakeServer(t, { opened: true });
  const session = await connectSpice({ host: '127.0.0.1', port });
  t.after(() => session.destroy());
  const p = await session.openPort();
  const total = 8 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 1);
  for (let sent = 0; sent < total; sent += chunk.length) fake.sendData(chunk);
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(p.stream.readableLength <= 512 * 1024, `buffered ${p.stream.readableLength}`);
  assert.ok((fake.webdavSocket?.writableLength ?? 0) > 0, 'the server is held back by TCP');
  let got = 0;
  p.stream.on('data', (c: Buffer) => (got += c.length));
  const deadline = Date.now() + 10_000;
  while (got < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(got, total);
});

test('spice transport: close() while the server never answers the link returns at once', { timeout: 20_000 }, async (t) => {
  const { createServer } = await import('node:net');
  const silent = createServer((s) => s.on('error', () => {}));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.after(() => silent.close());
  const tr = new SpiceTransport({ host: '127.0.0.1', port: (silent.address() as { port: number }).port });
  tr.start();
  await waitState(tr, (s) => s.state === 'connecting', 'connecting');
  const started = Date.now();
  await tr.close();
  assert.ok(Date.now() - started < 1000, `close took ${Date.now() - started} ms`);
  assert.equal(tr.state.state, 'closed');
});
