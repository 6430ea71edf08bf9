import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { guestChecks } from '../../../src/doctor/guest.js';
import { tempDir } from '../../helpers/tmp.js';

async function listenBoth(t: { after(fn: () => void): void }, make: () => Server): Promise<number> {
  const v4 = make().listen(0, '127.0.0.1');
  await once(v4, 'listening');
  const port = (v4.address() as { port: number }).port;
  const v6 = make().listen(port, '::1');
  await once(v6, 'listening');
  t.after(() => {
    v4.close();
    v6.close();
  });
  return port;
}

test('a VM without the webdav port gets the exact QEMU and libvirt fix', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'sys/vport0p1'), { recursive: true });
  await writeFile(join(dir, 'sys/vport0p1/name'), 'com.redhat.spice.0\n');
  const results = await guestChecks({ device: join(dir, 'missing'), sysfsPorts: join(dir, 'sys'), port: 1, timeoutMs: 500 });
  const port = results.find((r) => r.name === 'webdav port')!;
  assert.equal(port.status, 'fail');
  assert.match(port.detail, /com\.redhat\.spice\.0/);
  assert.match(port.fix!, /-device virtserialport,chardev=webdav0,name=org\.spice-space\.webdav\.0/);
  assert.match(port.fix!, /<channel type='spiceport'>/);
});

test('a free port device and a working share on both loopbacks', async (t) => {
  const dir = await tempDir(t);
  const fifo = join(dir, 'port');
  execFileSync('mkfifo', [fifo]);
  const port = await listenBoth(t, () =>
    createHttpServer((_req, res) => {
      res.setHeader('DAV', '1, 2');
      res.end();
    }),
  );
  const results = await guestChecks({ device: fifo, port, timeoutMs: 2000, sysfsPorts: dir });
  const by = Object.fromEntries(results.map((r) => [r.name, r]));
  assert.equal(by['webdav port']!.status, 'ok');
  assert.equal(by['port access']!.status, 'warn', 'nobody holds the port: the guest daemon is not running');
  assert.equal(by['loopback listener']!.status, 'ok');
  assert.match(by['loopback listener']!.detail, /127\.0\.0\.1:\d+ and \[::1\]:\d+ by .*node/);
  assert.equal(by['share']!.status, 'ok');
  assert.match(by['share']!.detail, /DAV: 1, 2/);
});

test('a proxy that accepts but never answers means the host is not sharing', async (t) => {
  const sockets: import('node:net').Socket[] = [];
  const port = await listenBoth(t, () => createTcpServer((s) => sockets.push(s)));
  t.after(() => sockets.forEach((s) => s.destroy()));
  const results = await guestChecks({ device: '/nonexistent', port, timeoutMs: 300 });
  const share = results.find((r) => r.name === 'share')!;
  assert.equal(share.status, 'fail');
  assert.match(share.detail, /no answer/);
  assert.match(share.fix!, /spicedav share/);
});

test('nothing listening says to start the guest proxy', async () => {
  const results = await guestChecks({ device: '/nonexistent', port: 9, timeoutMs: 300 });
  const l = results.find((r) => r.name === 'loopback listener')!;
  assert.equal(l.status, 'fail');
  assert.match(l.fix!, /spicedav guest/);
});
