// `--domain NAME`: the SPICE address comes from the real virsh (libvirt-clients), run against libvirt's test
// driver (test:///path/node.xml: an in-process hypervisor described by a file, no libvirtd), whose domains
// point at a real QEMU SPICE server. Only the domain's existence is simulated; virsh, its output and its errors
// are the real ones.
import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool } from '../helpers/tools.js';
import { startQemu } from '../helpers/qemu.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli, startCli } from '../helpers/cli.js';
import { waitState } from '../helpers/transport.js';
import { DomainLocator, SpiceTransport, runVirsh } from '../../src/host/index.js';
import { hasCode } from '../../src/errors.js';

interface TestDomain {
  name: string;
  /** SPICE port of the domain's <graphics>; none: a VNC display only. */
  spicePort?: number;
  /** Its SPICE password (passwd=). */
  password?: string;
  running?: boolean;
}

/** A libvirt test-driver node file with these domains; returns its connection URI. */
async function testDriver(dir: string, domains: TestDomain[]): Promise<string> {
  const file = join(dir, 'node.xml');
  await writeNode(file, domains);
  return `test://${file}`;
}

async function writeNode(file: string, domains: TestDomain[]): Promise<void> {
  const xml = domains.map(
    (d) => `  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>${d.name}</name><memory>65536</memory><os><type>hvm</type></os>
    <devices>${d.spicePort ? `<graphics type='spice' port='${d.spicePort}' autoport='no' listen='127.0.0.1'${d.password ? ` passwd='${d.password}'` : ''}/>` : `<graphics type='vnc' port='5901' autoport='no'/>`}</devices>
    ${d.running === false ? '<test:runstate>5</test:runstate>' : ''}
  </domain>`,
  );
  await writeFile(file, `<node>\n${xml.join('\n')}\n</node>\n`);
}

function tools(t: TestContext): boolean {
  return requireTool(t, 'virsh', 'libvirt-clients') && requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86');
}

test('share --domain finds the SPICE server through virsh and links to it; doctor --domain checks it', { timeout: 90_000 }, async (t) => {
  if (!tools(t)) return;
  const vm = await startQemu(t);
  const dir = await tempDir(t);
  const uri = await testDriver(dir, [{ name: 'vm1', spicePort: vm.spicePort }]);

  const doctor = await runCli(['doctor', '--domain', 'vm1', '--connect', uri]);
  assert.match(doctor.stdout, new RegExp(`libvirt domain.*vm1 on test://.*SPICE at 127\\.0\\.0\\.1, port ${vm.spicePort}`));
  assert.match(doctor.stdout, /webdav port.*has the org\.spice-space\.webdav\.0 port/);
  // No guest OS runs, so nothing has the port open: doctor says so and exits 5.
  assert.match(doctor.stdout, /guest daemon.*nothing in the guest has the port open/);
  assert.equal(doctor.code, 5, doctor.stdout + doctor.stderr);

  const cli = startCli(t, ['share', dir, '--domain', 'vm1', '--connect', uri, '--no-status']);
  await cli.waitFor(/sharing .* with libvirt domain vm1/);
  await cli.waitFor(/waiting for the guest to open org\.spice-space\.webdav\.0/, 30_000);
  assert.equal(await cli.stop(), 0);
});

test('share --domain: the SPICE password comes from libvirt; a read-only connection gets the address alone', { timeout: 90_000 }, async (t) => {
  if (!tools(t)) return;
  const vm = await startQemu(t, { password: 'pw-from-libvirt' });
  const dir = await tempDir(t);
  const uri = await testDriver(dir, [{ name: 'locked', spicePort: vm.spicePort, password: 'pw-from-libvirt' }]);

  const cli = startCli(t, ['share', dir, '--domain', 'locked', '--connect', uri, '--no-status']);
  await cli.waitFor(/waiting for the guest to open org\.spice-space\.webdav\.0/, 30_000);
  assert.equal(await cli.stop(), 0);
  assert.doesNotMatch(cli.stdout + cli.stderr, /pw-from-libvirt/, 'the password is never printed');
  const doctor = await runCli(['doctor', '--domain', 'locked', '--connect', uri]);
  assert.match(doctor.stdout, /libvirt domain.*password from libvirt/);
  assert.match(doctor.stdout, /SPICE link.*linked/);
  assert.doesNotMatch(doctor.stdout, /pw-from-libvirt/);

  // virsh -r: libvirt refuses the secure XML ("operation forbidden"), the address still comes, and the link then
  // fails on the password, which ends the transport (wrong passwords are not retried).
  const readOnly = new DomainLocator({ domain: 'locked', connect: uri, run: (args) => runVirsh(['-r', ...args]) });
  assert.deepEqual(await readOnly.locate(), { host: '127.0.0.1', port: vm.spicePort });
  const tr = new SpiceTransport({ locate: () => readOnly.locate(), reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } });
  t.after(() => tr.close());
  tr.start();
  const closed = await waitState(tr, (s) => s.state === 'closed' && s.error !== undefined, 'the refused link', 20_000);
  assert.ok(hasCode(closed.error, 'SPICE_ERR_PERMISSION_DENIED') || hasCode(closed.error, 'SPICE_ERR_WRONG_PASSWORD'), String(closed.error));
});

test('share --domain: an unknown domain, a domain without SPICE and a missing virsh end with exit 3 and the fix', { timeout: 60_000 }, async (t) => {
  if (!tools(t)) return;
  const dir = await tempDir(t);
  const uri = await testDriver(dir, [{ name: 'vnc-only' }]);

  const unknown = await runCli(['share', dir, '--domain', 'nope', '--connect', uri]);
  assert.equal(unknown.code, 3, unknown.stderr);
  assert.match(unknown.stderr, /libvirt has no domain "nope".*failed to get domain 'nope'.*virsh list --all/);

  const vnc = await runCli(['share', dir, '--domain', 'vnc-only', '--connect', uri]);
  assert.equal(vnc.code, 3, vnc.stderr);
  assert.match(vnc.stderr, /"vnc-only" has no SPICE display: give it <graphics type='spice'/);

  const noVirsh = await runCli(['share', dir, '--domain', 'vm1'], { env: { PATH: dir } });
  assert.equal(noVirsh.code, 3, noVirsh.stderr);
  assert.match(noVirsh.stderr, /virsh, which is not installed.*libvirt-clients/);

  // No target at all: not a guess, but the running domains are named (virsh's default connection here is the
  // test driver's file).
  const listed = await testDriver(dir, [{ name: 'alpha', spicePort: 5999 }, { name: 'beta', spicePort: 5998 }, { name: 'off', spicePort: 5997, running: false }]);
  const none = await runCli(['share', dir], { env: { LIBVIRT_DEFAULT_URI: listed } });
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /say how to reach the VM.*running libvirt domains: alpha, beta \(e\.g\. --domain alpha\)/);

  const both = await runCli(['share', dir, '--domain', 'vm1', '--spice', 'spice://127.0.0.1:5900']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /one of --spice, --domain and --qemu-socket/);
});

test('share --domain: a domain that is not running is waited for, and linked once it starts', { timeout: 90_000 }, async (t) => {
  if (!tools(t)) return;
  const vm = await startQemu(t);
  const dir = await tempDir(t);
  const uri = await testDriver(dir, [{ name: 'later', spicePort: vm.spicePort, running: false }]);
  const cli = startCli(t, ['share', dir, '--domain', 'later', '--connect', uri, '--no-status']);
  await cli.waitFor(/waiting: the domain "later" is not running \(start it: virsh start later\)/, 20_000);
  // It asks again every 2 s but says it once, and warns about nothing.
  await new Promise((r) => setTimeout(r, 4500));
  assert.equal(cli.stdout.match(/is not running/g)?.length, 1, cli.stdout);
  assert.doesNotMatch(cli.stderr, /WARN/);
  assert.equal(cli.child.exitCode, null, 'share keeps waiting');

  // The domain starts (in libvirt's test driver: the node file now says it runs): share finds and links it.
  await writeNode(join(dir, 'node.xml'), [{ name: 'later', spicePort: vm.spicePort }]);
  await cli.waitFor(/waiting for the guest to open org\.spice-space\.webdav\.0/, 20_000);
  assert.equal(await cli.stop(), 0);
});

test('spice transport with a DomainLocator: the domain restarted on another port is found again', { timeout: 120_000 }, async (t) => {
  if (!tools(t)) return;
  const first = await startQemu(t);
  const dir = await tempDir(t);
  const uri = await testDriver(dir, [{ name: 'vm1', spicePort: first.spicePort }]);
  const locator = new DomainLocator({ domain: 'vm1', connect: uri });
  const tr = new SpiceTransport({ locate: () => locator.locate(), reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } });
  t.after(() => tr.close());
  tr.start();
  await waitState(tr, (s) => s.state === 'waiting' && /webdav channel linked/.test(s.detail ?? ''), 'the link to the first QEMU', 20_000);

  // libvirt restarts the domain with a new autoport: the old server is gone, the node file says where it is now.
  await first.kill();
  await waitState(tr, (s) => s.state === 'retrying', 'the loss of the first QEMU', 20_000);
  const second = await startQemu(t);
  assert.notEqual(second.spicePort, first.spicePort);
  await writeNode(join(dir, 'node.xml'), [{ name: 'vm1', spicePort: second.spicePort }]);
  await waitState(tr, (s) => s.state === 'waiting' && /webdav channel linked/.test(s.detail ?? ''), 'the link to the second QEMU', 30_000);

  // The domain disappears from libvirt altogether: that ends the transport with the stable code.
  await writeNode(join(dir, 'node.xml'), [{ name: 'other', spicePort: second.spicePort }]);
  await second.kill();
  const closed = await waitState(tr, (s) => s.state === 'closed' && s.error !== undefined, 'the end', 30_000);
  assert.ok(hasCode(closed.error, 'HOST_ERR_DOMAIN_NOT_FOUND'), String(closed.error));
});
