import test from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { decodeMessage, encodeMessage, messageLength } from '../../../src/guest/dbus.js';
import type { DbusValue } from '../../../src/guest/dbus.js';
import { AvahiAdvertiser } from '../../../src/guest/mdns.js';
import { GuestProxy } from '../../../src/guest/proxy.js';
import { UnixSocketPortDevice } from '../../../src/guest/unix-socket-port-device.js';
import { tempDir } from '../../helpers/tmp.js';
import { FakeHost } from './fake-host.js';
import { stateReached, within } from './helpers.js';

interface Call {
  member: string;
  path: string;
  body: DbusValue[];
}

/** A system bus with avahi-daemon on it, as far as the advertiser can tell: EXTERNAL auth, then canned replies. */
async function fakeAvahiBus(t: TestContext): Promise<{ path: string; calls: Call[]; connections: () => number }> {
  const path = join(await tempDir(t), 'system_bus_socket');
  const calls: Call[] = [];
  const sockets = new Set<Socket>();
  let serial = 100;
  const server = createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    let buf = Buffer.alloc(0);
    let authed = false;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!authed) {
        const text = buf.toString('latin1');
        if (text.includes('AUTH EXTERNAL') && text.endsWith('\r\n') && !text.includes('BEGIN')) {
          s.write('OK 0123456789abcdef0123456789abcdef\r\n');
          buf = Buffer.alloc(0);
        } else if (text.includes('BEGIN\r\n')) {
          buf = buf.subarray(buf.indexOf('BEGIN\r\n') + 7);
          authed = true;
        }
        if (!authed) return;
      }
      for (let n = messageLength(buf); n > 0; n = messageLength(buf)) {
        const m = decodeMessage(buf.subarray(0, n));
        buf = buf.subarray(n);
        calls.push({ member: m.member ?? '', path: m.path ?? '', body: m.body });
        const reply = (signature?: string, args?: DbusValue[]): boolean =>
          s.write(encodeMessage({ type: 2, serial: serial++, replySerial: m.serial, signature, args }));
        if (m.member === 'Hello') reply('s', [':1.42']);
        else if (m.member === 'GetVersionString') reply('s', ['avahi 0.8']);
        else if (m.member === 'EntryGroupNew') reply('o', [`/Client1/EntryGroup${serial}`]);
        else reply();
      }
    });
  });
  server.listen(path);
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { path, calls, connections: () => sockets.size };
}

test('avahi advertiser: _webdav._tcp "Spice client folder" on lo with u= p= path=/, withdrawn with Free', async (t) => {
  const bus = await fakeAvahiBus(t);
  const adv = new AvahiAdvertiser({ busPath: bus.path });
  assert.equal(await adv.available(), true);
  await adv.publish(9843);
  const lo = Number(readFileSync('/sys/class/net/lo/ifindex', 'utf8'));
  const add = bus.calls.find((c) => c.member === 'AddService');
  assert.ok(add);
  assert.deepEqual(add.body, [
    lo, -1, 0, 'Spice client folder', '_webdav._tcp', '', '', 9843,
    [[...Buffer.from('u=')], [...Buffer.from('p=')], [...Buffer.from('path=/')]],
  ]);
  const group = bus.calls.find((c) => c.member === 'EntryGroupNew');
  assert.ok(group);
  assert.deepEqual(bus.calls.map((c) => c.member), ['Hello', 'GetVersionString', 'EntryGroupNew', 'AddService', 'Commit']);
  await adv.withdraw();
  const free = bus.calls.at(-1);
  assert.equal(free?.member, 'Free');
  assert.equal(free?.path, add.path, 'the group that holds the record is freed');
  await adv.close();
  await within(new Promise<void>((r) => { const i = setInterval(() => bus.connections() === 0 && (clearInterval(i), r()), 10); }), 2000, 'bus connection closed');
});

test('avahi advertiser: no bus means not available, and the proxy runs without it', async (t) => {
  const dir = await tempDir(t);
  const adv = new AvahiAdvertiser({ busPath: join(dir, 'no-bus') });
  assert.equal(await adv.available(), false);
  await assert.rejects(adv.publish(9843));

  // mdns 'auto' (the default) finds no avahi on the bus and serves anyway.
  const saved = process.env.DBUS_SYSTEM_BUS_ADDRESS;
  process.env.DBUS_SYSTEM_BUS_ADDRESS = `unix:path=${join(dir, 'no-bus')}`;
  t.after(() => (saved === undefined ? delete process.env.DBUS_SYSTEM_BUS_ADDRESS : (process.env.DBUS_SYSTEM_BUS_ADDRESS = saved)));
  const host = await FakeHost.start(t);
  const proxy = new GuestProxy({ device: new UnixSocketPortDevice({ path: host.path }), port: 0, hosts: ['127.0.0.1'] });
  t.after(() => proxy.close());
  await proxy.start();
  await stateReached(proxy, 'attached');
});

test('the proxy advertises while a host is attached and withdraws when it leaves', async (t) => {
  const bus = await fakeAvahiBus(t);
  const host = await FakeHost.start(t);
  const proxy = new GuestProxy({
    device: new UnixSocketPortDevice({ path: host.path, pollInterval: 100 }),
    port: 0,
    hosts: ['127.0.0.1'],
    mdns: new AvahiAdvertiser({ busPath: bus.path }),
  });
  t.after(() => proxy.close());
  await proxy.start();
  await stateReached(proxy, 'attached');
  const port = (proxy.addresses[0] as { port: number }).port;
  await within(new Promise<void>((r) => { const i = setInterval(() => bus.calls.some((c) => c.member === 'Commit') && (clearInterval(i), r()), 10); }), 2000, 'published');
  assert.equal(bus.calls.find((c) => c.member === 'AddService')?.body[7], port);
  await host.leave();
  await stateReached(proxy, 'waiting');
  assert.equal(bus.calls.at(-1)?.member, 'Free', 'withdrawn when the host left');
});
