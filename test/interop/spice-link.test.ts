import test from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { requireTool } from '../helpers/tools.js';
import { startQemu } from '../helpers/qemu.js';
import { connectSpice, SPICE_CHANNEL_WEBDAV, type SpiceSession } from '../../src/spice/index.js';
import { hasCode } from '../../src/errors.js';

// Real spice-server (QEMU 7.2, libspice-server 0.15) with no guest: CPUs stopped, only the SPICE link matters.

test('QEMU SPICE: link main, the channel list has webdav {11,0}, the webdav channel links and PORT_INIT arrives', { timeout: 60_000 }, async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const vm = await startQemu(t);
  const session = await connectSpice({ host: '127.0.0.1', port: vm.spicePort });
  t.after(() => session.destroy());
  assert.ok(session.sessionId !== 0, 'MAIN_INIT gave a session id');
  assert.ok(session.channels.some((c) => c.type === SPICE_CHANNEL_WEBDAV && c.id === 0), `channels: ${JSON.stringify(session.channels)}`);

  const port = await session.openPort();
  assert.equal(port.name, 'org.spice-space.webdav.0');
  assert.equal(port.opened, false, 'no guest has the port open');

  // The session stays up past the server's network test (PINGs with 250 KiB answered).
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(port.stream.destroyed, false);

  const closed = once(port, 'close');
  await session.close();
  const [err] = (await closed) as [Error | undefined];
  assert.equal(err, undefined, 'a local close is not an error');
});

test('QEMU SPICE: a second client takes the VM over and the first one sees its connection lost', { timeout: 60_000 }, async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const vm = await startQemu(t);
  const first = await connectSpice({ host: '127.0.0.1', port: vm.spicePort });
  t.after(() => first.destroy());
  const lost = once(first, 'close') as Promise<[Error | undefined]>;
  const second: SpiceSession = await connectSpice({ host: '127.0.0.1', port: vm.spicePort });
  t.after(() => second.destroy());
  const [err] = await lost;
  assert.ok(hasCode(err, 'SPICE_ERR_CONNECTION_LOST'), String(err));
});

test('QEMU SPICE: a VM without the webdav port lists no channel 11', { timeout: 60_000 }, async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const vm = await startQemu(t, { webdavPort: false });
  const session = await connectSpice({ host: '127.0.0.1', port: vm.spicePort });
  t.after(() => session.destroy());
  assert.ok(!session.channels.some((c) => c.type === SPICE_CHANNEL_WEBDAV));
  await assert.rejects(session.openPort(), (e: unknown) => hasCode(e, 'SPICE_ERR_CHANNEL_NOT_AVAILABLE'));
});
