import test from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startQemu } from '../helpers/qemu.js';
import { runCli } from '../helpers/cli.js';
import { requireTool } from '../helpers/tools.js';
import { tempDir } from '../helpers/tmp.js';

// `spicedav doctor` against QEMU's real SPICE server (no guest OS: the CPUs never start, which is exactly a
// VM whose guest has not opened the port).

test('doctor: a VM with the port but no guest daemon says to start spicedav guest (exit 5)', async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const vm = await startQemu(t);
  const r = await runCli(['doctor', '--spice', `spice://127.0.0.1:${vm.spicePort}`]);
  assert.equal(r.code, 5, r.stdout + r.stderr);
  assert.match(r.stdout, /✔ SPICE server: 127\.0\.0\.1:\d+ accepts connections/);
  assert.match(r.stdout, /✔ SPICE link: linked/);
  assert.match(r.stdout, /✔ webdav port: the VM has the org\.spice-space\.webdav\.0 port/);
  assert.match(r.stdout, /✖ guest daemon: nothing in the guest has the port open\n\s+In the guest: spicedav guest/);
});

test('doctor: a VM without the port gets the exact QEMU/libvirt fix', async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const vm = await startQemu(t, { webdavPort: false });
  const r = await runCli(['doctor', '--spice', `spice://127.0.0.1:${vm.spicePort}`]);
  assert.equal(r.code, 5);
  assert.match(r.stdout, /✖ webdav port: the VM has no org\.spice-space\.webdav\.0 port/);
  assert.match(r.stdout, /-chardev spiceport,id=webdav0,name=org\.spice-space\.webdav\.0/);
  assert.match(r.stdout, /<channel type='spiceport'>/);
});

test('doctor: a connected viewer is reported and left connected', async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const vm = await startQemu(t);
  // Any TCP client of the SPICE port stands for the viewer: doctor must see it without linking.
  const viewer = connect(vm.spicePort, '127.0.0.1');
  await once(viewer, 'connect');
  t.after(() => viewer.destroy());
  let closed = false;
  viewer.on('close', () => (closed = true));
  const r = await runCli(['doctor', '--spice', `spice://127.0.0.1:${vm.spicePort}`]);
  assert.equal(r.code, 0, 'a warning alone does not fail the doctor');
  assert.match(r.stdout, new RegExp(`! SPICE client: node \\(pid ${process.pid}\\) is connected to this VM; not linking`));
  assert.match(r.stdout, /--qemu-socket/);
  assert.doesNotMatch(r.stdout, /SPICE link/);
  assert.equal(closed, false);
});

test('doctor: a wrong SPICE password fails the link and says how to give one', async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const vm = await startQemu(t, { password: 'right-password' });
  const dir = await tempDir(t);
  await writeFile(join(dir, 'pw'), 'wrong-password\n');
  const r = await runCli(['doctor', '--spice', `spice://127.0.0.1:${vm.spicePort}`, '--password-file', join(dir, 'pw')]);
  assert.equal(r.code, 5);
  assert.match(r.stdout, /✖ SPICE link: .*password/i);
  const ok = await runCli(['doctor', '--spice', `spice://127.0.0.1:${vm.spicePort}`], { env: { SPICE_PASSWORD: 'right-password' } });
  assert.match(ok.stdout, /✔ SPICE link: linked/);
});

test('doctor: the QEMU socket mode checks the socket', async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const dir = await tempDir(t);
  const missing = await runCli(['doctor', '--qemu-socket', join(dir, 'vm.sock')]);
  assert.equal(missing.code, 5);
  assert.match(missing.stdout, /✖ QEMU socket: .* does not exist/);
  await startQemu(t, { socketPath: join(dir, 'vm.sock'), spice: false });
  const r = await runCli(['doctor', '--qemu-socket', join(dir, 'vm.sock')]);
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /✔ QEMU socket: .* accepts connections/);
});
