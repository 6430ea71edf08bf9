import test from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GuestProxy } from '../../../src/guest/proxy.js';
import type { GuestProxyOptions } from '../../../src/guest/proxy.js';
import { UnixSocketPortDevice } from '../../../src/guest/unix-socket-port-device.js';
import { VirtioPortDevice } from '../../../src/guest/virtio-port-device.js';
import { hasCode } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';
import { FakeHost, pattern } from './fake-host.js';
import { readBytes, readToEnd, stateReached, tcp, within } from './helpers.js';

const POLL = 200;

async function startProxy(t: TestContext, host: FakeHost, options: Partial<GuestProxyOptions> = {}): Promise<GuestProxy> {
  const proxy = new GuestProxy({
    device: new UnixSocketPortDevice({ path: host.path, pollInterval: POLL }),
    port: 0,
    hosts: ['127.0.0.1', '::1'],
    mdns: false,
    ...options,
  });
  t.after(() => proxy.close());
  await proxy.start();
  return proxy;
}

function portOf(proxy: GuestProxy): number {
  return (proxy.addresses[0] as { port: number }).port;
}

const haveIpv6Loopback = Object.values(networkInterfaces()).some((list) => list?.some((a) => a.address === '::1'));

test('50 concurrent clients: distinct ids, byte-exact echoes, never a live id twice', async (t) => {
  const host = await FakeHost.start(t);
  const proxy = await startProxy(t, host);
  await stateReached(proxy, 'attached');
  const live = new Set<bigint>();
  let reused = 0;
  proxy.on('connection', (e) => {
    if (live.has(e.id)) reused++;
    live.add(e.id);
  });
  proxy.on('disconnect', (e) => live.delete(e.id));

  const clients = await Promise.all(Array.from({ length: 50 }, () => tcp(portOf(proxy))));
  const payloads = clients.map(() => randomBytes(64 * 1024 + Math.floor(Math.random() * 65536)));
  const echoes = clients.map((c, i) => readBytes(c, (payloads[i] as Buffer).length, 20_000));
  clients.forEach((c, i) => c.write(Buffer.concat([Buffer.from('ECHO\n'), payloads[i] as Buffer])));
  const got = await Promise.all(echoes);
  got.forEach((b, i) => assert.ok(b.equals(payloads[i] as Buffer), `client ${i} got its own bytes back`));
  assert.equal(new Set(host.ids).size, 50, 'the host saw 50 distinct ids');
  assert.equal(reused, 0, 'no id was handed out while live');
  assert.equal(proxy.stats.connections, 50);

  // Close half, open more: new ids must still avoid the live ones.
  await Promise.all(clients.slice(0, 25).map((c) => (c.end(), once(c, 'close'))));
  const more = await Promise.all(Array.from({ length: 25 }, () => tcp(portOf(proxy))));
  await Promise.all(more.map(async (c) => (c.write('ID\n'), readBytes(c, 2))));
  assert.equal(reused, 0, 'no live id reused after churn');
  for (const c of [...clients, ...more]) c.destroy();
});

test('a size-0 frame from the host keeps the TCP connection; the next request on it works', async (t) => {
  const host = await FakeHost.start(t);
  const proxy = await startProxy(t, host);
  await stateReached(proxy, 'attached');
  const c = await tcp(portOf(proxy));
  let ended = false;
  c.on('end', () => (ended = true));
  c.on('close', () => (ended = true));
  c.write('SEND 5\n');
  assert.ok((await readBytes(c, 5)).equals(pattern(5)));
  // Give a wrongly closing proxy time to show it: the size-0 frame follows the data at once.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(proxy.stats.hostCloses, 1, 'the host closed its side once');
  assert.equal(ended, false, 'the local connection stays open (spice-webdavd behaviour)');
  // Same TCP connection, same mux id: the host sees it as a new connection (protocol.md §a.4).
  c.write('SEND 7\n');
  assert.ok((await readBytes(c, 7)).equals(pattern(7)));
  assert.equal(host.ids.length, 2);
  assert.equal(host.ids[0], host.ids[1], 'the second request went out on the same id');
  c.destroy();
});

test('host loss closes every client, keeps the listener, and service resumes when the host returns', async (t) => {
  const host = await FakeHost.start(t);
  const proxy = await startProxy(t, host, { waitForHost: 5000 });
  await stateReached(proxy, 'attached');
  const clients = await Promise.all([1, 2, 3].map(() => tcp(portOf(proxy))));
  await Promise.all(clients.map(async (c) => (c.write('ECHO\nx'), readBytes(c, 1))));
  const closed = clients.map((c) => within(once(c, 'close'), 2000, 'client closed on host loss'));

  await host.leave();
  await Promise.all(closed);
  await stateReached(proxy, 'waiting', 2000);
  assert.equal(proxy.stats.hostLosses, 1);

  // The listener is still bound; a client arriving now waits for the host with its request unread.
  const early = await tcp(portOf(proxy));
  early.write('ECHO\nwaited');
  const earlyAnswer = readBytes(early, 6, 5000);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(proxy.stats.waiting, 1);

  const back = Date.now();
  await host.comeBack();
  await stateReached(proxy, 'attached', 3000);
  const resumeMs = Date.now() - back;
  t.diagnostic(`resumed ${resumeMs} ms after the host came back (poll interval ${POLL} ms)`);
  assert.ok(resumeMs < POLL + 800, `resume took ${resumeMs} ms (bound: one poll interval plus scheduling slack)`);
  assert.equal((await earlyAnswer).toString(), 'waited', 'the waiting client is served once the host is back');

  const c = await tcp(portOf(proxy));
  c.write('ECHO\nagain');
  assert.equal((await readBytes(c, 5)).toString(), 'again');
  assert.ok(proxy.stats.lastResumeMs !== undefined);
  early.destroy();
  c.destroy();
});

test('resume with the listen-mode socket device is immediate', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'port.sock');
  const device = new UnixSocketPortDevice({ path, listen: true });
  const proxy = new GuestProxy({ device, port: 0, hosts: ['127.0.0.1'], mdns: false });
  t.after(() => proxy.close());
  await proxy.start();
  const { MuxSession } = await import('../../../mux/index.js');
  const attach = async (): Promise<ReturnType<typeof connect>> => {
    const s = connect(path);
    s.on('error', () => {});
    await once(s, 'connect');
    new MuxSession(s, { role: 'host' }).on('channel', (ch) => ch.pipe(ch));
    return s;
  };
  const s1 = await attach();
  await stateReached(proxy, 'attached');
  s1.destroy();
  await stateReached(proxy, 'waiting');
  const t0 = Date.now();
  await attach();
  await stateReached(proxy, 'attached');
  const ms = Date.now() - t0;
  t.diagnostic(`resumed in ${ms} ms`);
  assert.ok(ms < 500, `resume took ${ms} ms`);
});

test('a stalled client does not block another moving 16 MiB', async (t) => {
  const host = await FakeHost.start(t);
  const proxy = await startProxy(t, host);
  await stateReached(proxy, 'attached');
  const stalledSize = 8 * 1024 * 1024;
  const stalled = await tcp(portOf(proxy));
  stalled.pause();
  stalled.write(`SEND ${stalledSize}\n`);
  await new Promise((r) => setTimeout(r, 300)); // let its answer pile up in the proxy

  const big = randomBytes(16 * 1024 * 1024);
  const mover = await tcp(portOf(proxy));
  const t0 = Date.now();
  const echoed = readBytes(mover, big.length, 60_000);
  mover.write('ECHO\n');
  mover.write(big);
  assert.ok((await echoed).equals(big), '16 MiB echoed byte-exact while the other client reads nothing');
  t.diagnostic(`16 MiB round trip with a stalled neighbour: ${Date.now() - t0} ms`);

  const rest = await readBytes(stalled, stalledSize, 30_000);
  assert.ok(rest.equals(pattern(stalledSize)), 'the stalled client still gets all its bytes, in order');
  stalled.destroy();
  mover.destroy();
});

for (const zeroCopyUploads of [true, false]) {
  test(`a 32 MiB upload reaches the host byte-exact and the answer comes back (${zeroCopyUploads ? 'in-place frames' : 'pipe() fallback'})`, async (t) => {
    const host = await FakeHost.start(t);
    const proxy = await startProxy(t, host, { zeroCopyUploads });
    await stateReached(proxy, 'attached');
    const data = randomBytes(32 * 1024 * 1024);
    const client = await tcp(portOf(proxy));
    const answer = readBytes(client, 65, 60_000);
    client.write(`SINK ${data.length}\n`);
    client.write(data);
    assert.equal((await answer).toString(), `${createHash('sha256').update(data).digest('hex')}\n`);
    assert.equal(proxy.stats.bytesToHost >= data.length, true, 'the upload is counted');
    client.destroy();
  });
}

test('a client that resets in the middle of an upload: the host sees its channel end, the proxy serves on', async (t) => {
  const host = await FakeHost.start(t);
  const proxy = await startProxy(t, host);
  await stateReached(proxy, 'attached');
  const client = await tcp(portOf(proxy));
  client.write(`SINK ${64 * 1024 * 1024}\n`);
  client.write(randomBytes(8 * 1024 * 1024));
  await within(
    (async () => {
      while ((host.session?.stats.bytesIn ?? 0) < 4 * 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
    })(),
    10_000,
    'the upload under way',
  );
  const id = host.ids.at(-1) as bigint;
  client.resetAndDestroy();
  await within(
    (async () => {
      while (!host.ended.includes(id)) await new Promise((r) => setTimeout(r, 5));
    })(),
    5000,
    'the host channel ended (size-0 frame)',
  );
  const next = await tcp(portOf(proxy));
  next.write('SEND 9\n');
  assert.ok((await readBytes(next, 9)).equals(pattern(9)), 'a new connection works');
  next.destroy();
});

test('listens on loopback only: 127.0.0.1 and ::1, nothing else', async (t) => {
  const host = await FakeHost.start(t);
  const proxy = await startProxy(t, host);
  await stateReached(proxy, 'attached');
  const bound = proxy.addresses.map((a) => a.address).sort();
  assert.deepEqual(bound, haveIpv6Loopback ? ['127.0.0.1', '::1'] : ['127.0.0.1']);
  assert.throws(() => new GuestProxy({ device: '/dev/null', hosts: ['0.0.0.0'] }), (e) => hasCode(e, 'GUEST_ERR_LISTEN'));
  assert.throws(() => new GuestProxy({ device: '/dev/null', hosts: ['127.0.0.1', '::'] }), (e) => hasCode(e, 'GUEST_ERR_LISTEN'));

  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && !a.internal && a.family === 'IPv4');
  if (external) {
    const s = connect({ port: portOf(proxy), host: external.address });
    const [err] = (await within(once(s, 'error'), 3000, 'connect to a non-loopback address')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED', `${external.address} must not reach the proxy`);
  } else {
    t.diagnostic('no non-loopback IPv4 address to try');
  }
});

test('the IPv6 loopback listener serves like the IPv4 one', async (t) => {
  if (!haveIpv6Loopback) return t.skip('this machine has no ::1');
  const host = await FakeHost.start(t);
  const proxy = await startProxy(t, host);
  await stateReached(proxy, 'attached');
  const c = await tcp(portOf(proxy), '::1');
  c.write('ECHO\nvia ::1');
  assert.equal((await readBytes(c, 7)).toString(), 'via ::1');
  c.destroy();
});

test('no host: a connection waits waitForHost ms, then gets a 503 and a clean close', async (t) => {
  const host = await FakeHost.start(t);
  await host.leave();
  const proxy = await startProxy(t, host, { waitForHost: 400 });
  assert.equal(proxy.state, 'waiting');
  const c = await tcp(portOf(proxy));
  c.write('PROPFIND / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const t0 = Date.now();
  const answer = (await readToEnd(c, 3000)).toString();
  const waited = Date.now() - t0;
  assert.match(answer, /^HTTP\/1\.1 503 /);
  assert.match(answer, /No SPICE client is attached/);
  assert.ok(waited >= 350 && waited < 1500, `waited ${waited} ms`);
  assert.equal(proxy.stats.connectionsRefused, 1);

  const proxy0 = await startProxy(t, host, { waitForHost: 0 });
  const c0 = await tcp(portOf(proxy0));
  assert.match((await readToEnd(c0, 1000)).toString(), /^HTTP\/1\.1 503 /);
});

test('start() fails cleanly when the port is taken; a fatal device error stops the proxy', async (t) => {
  const blocker = createServer().listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  t.after(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const proxy = new GuestProxy({ device: '/dev/null', port, hosts: ['127.0.0.1'], mdns: false });
  await assert.rejects(proxy.start(), (e) => hasCode(e, 'GUEST_ERR_ADDRESS_IN_USE'));
  await proxy.close();

  const dir = await tempDir(t);
  const file = join(dir, 'not-a-port');
  writeFileSync(file, '');
  const broken = new GuestProxy({ device: new VirtioPortDevice({ path: file }), port: 0, hosts: ['127.0.0.1'], mdns: false });
  await broken.start();
  const err = await within(broken.closed, 3000, 'proxy stops on a fatal device error');
  assert.ok(hasCode(err, 'GUEST_ERR_BAD_DEVICE'));
  assert.equal(broken.state, 'closed');
  assert.equal(broken.addresses.length, 0, 'listeners released');
});

test('close(): clients closed, size-0 sent for each, listeners released, idempotent', async (t) => {
  const host = await FakeHost.start(t);
  const proxy = await startProxy(t, host);
  await stateReached(proxy, 'attached');
  const c = await tcp(portOf(proxy));
  c.write('ID\n');
  await readBytes(c, 2);
  const closedClient = within(once(c, 'close'), 3000, 'client closed by close()');
  const hostChannelEnded = new Promise<void>((resolve) => host.session?.once('close', () => resolve()));
  const port = portOf(proxy);
  await Promise.all([proxy.close(), proxy.close()]);
  await closedClient;
  await within(hostChannelEnded, 3000, 'host session ended by the proxy closing the port');
  assert.deepEqual(host.ended, host.ids, 'every channel got its size-0 frame before the port closed');
  assert.equal(proxy.state, 'closed');
  assert.equal(await proxy.closed, undefined);
  const s = connect({ port, host: '127.0.0.1' });
  const [err] = (await within(once(s, 'error'), 2000, 'connect after close')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
  await assert.rejects(proxy.start(), (e) => hasCode(e, 'GUEST_ERR_CLOSED'));
});
