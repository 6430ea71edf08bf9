import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { requireTool } from '../helpers/tools.js';
import { startQemu } from '../helpers/qemu.js';
import { tempDir } from '../helpers/tmp.js';
import { connectSpice } from '../../src/spice/index.js';
import { QemuSocketTransport, SpiceTransport, type TransportState } from '../../src/host/index.js';
import { hasCode } from '../../src/errors.js';
import { waitState } from '../helpers/transport.js';

const fast = { initialDelayMs: 200, maxDelayMs: 1500 };

test('spice transport: waits for the guest, backs off when a viewer takes over, reconnects after QEMU restarts', { timeout: 120_000 }, async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const vm = await startQemu(t);
  const tr = new SpiceTransport({ host: '127.0.0.1', port: vm.spicePort, reconnect: fast });
  t.after(() => tr.close());
  const states: string[] = [];
  tr.on('state', (s: TransportState) => states.push(s.state));
  tr.start();
  const waiting = await waitState(tr, (s) => s.state === 'waiting', 'waiting for the guest', 20_000);
  assert.match(waiting.detail ?? '', /waiting for the guest to open org\.spice-space\.webdav\.0/);
  assert.deepEqual(states.slice(0, 2), ['connecting', 'waiting']);

  // A viewer connects: the server drops us; we say why and do not fight back at once.
  const viewer = await connectSpice({ host: '127.0.0.1', port: vm.spicePort });
  const taken = await waitState(tr, (s) => s.state === 'retrying', 'the takeover', 20_000);
  assert.ok(hasCode(taken.error, 'HOST_ERR_VIEWER_CONNECTED'), String(taken.error));
  assert.match(taken.error?.message ?? '', /one client per VM.*--qemu-socket/s);
  assert.equal(taken.retryInMs, fast.maxDelayMs);
  await viewer.close();
  await waitState(tr, (s) => s.state === 'waiting', 'relinking after the viewer left', 20_000);

  // QEMU goes away and comes back on the same port.
  await vm.kill();
  const lost = await waitState(tr, (s) => s.state === 'retrying', 'the loss', 20_000);
  assert.ok(!hasCode(lost.error, 'HOST_ERR_VIEWER_CONNECTED'), 'a stopped QEMU is not mistaken for a viewer');
  await new Promise((r) => setTimeout(r, 500));
  await vm.restart();
  await waitState(tr, (s) => s.state === 'waiting', 'relinking after QEMU restarted', 20_000);

  await tr.close();
  assert.equal(tr.state.state, 'closed');
});

test('spice transport: a VM without the webdav port says what to add; a wrong password ends the transport', { timeout: 60_000 }, async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const vm = await startQemu(t, { webdavPort: false, password: 'pw' });

  const denied = new SpiceTransport({ host: '127.0.0.1', port: vm.spicePort, password: 'wrong', reconnect: fast });
  t.after(() => denied.close());
  denied.start();
  const closed = await waitState(denied, (s) => s.state === 'closed' && s.error !== undefined, 'the fatal error', 20_000);
  assert.ok(hasCode(closed.error, 'SPICE_ERR_WRONG_PASSWORD'), String(closed.error));

  const tr = new SpiceTransport({ host: '127.0.0.1', port: vm.spicePort, password: 'pw', reconnect: fast });
  t.after(() => tr.close());
  tr.start();
  const s = await waitState(tr, (x) => x.state === 'waiting' && x.error !== undefined, 'the missing-port error', 20_000);
  assert.ok(hasCode(s.error, 'HOST_ERR_NO_WEBDAV_PORT'));
  const msg = s.error?.message ?? '';
  assert.match(msg, /-chardev spiceport,id=webdav0,name=org\.spice-space\.webdav\.0/);
  assert.match(msg, /-device virtserialport,bus=vser0\.0,chardev=webdav0,name=org\.spice-space\.webdav\.0/);
  assert.match(msg, /<channel type='spiceport'><source channel='org\.spice-space\.webdav\.0'\/><target type='virtio' name='org\.spice-space\.webdav\.0'\/><\/channel>/);
});

test('qemu-socket transport: links to -chardev socket,server=on,wait=off and again after QEMU restarts', { timeout: 60_000 }, async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const dir = await tempDir(t);
  const path = join(dir, 'webdav.sock');
  const vm = await startQemu(t, { spice: false, socketPath: path });
  const tr = new QemuSocketTransport({ path, reconnect: fast });
  t.after(() => tr.close());
  const links: Duplex[] = [];
  tr.on('link', (s: Duplex) => links.push(s));
  tr.start();
  await waitState(tr, (s) => s.state === 'linked', 'the first link', 20_000);
  assert.equal(links.length, 1);

  await vm.kill();
  await waitState(tr, (s) => s.state === 'retrying', 'the loss', 20_000);
  await vm.restart();
  await waitState(tr, (s) => s.state === 'linked', 'the second link', 20_000);
  assert.equal(links.length, 2);
  await tr.close();
  assert.ok(links.every((s) => s.destroyed));
});
