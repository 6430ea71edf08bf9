import test from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DomainLocator, virshRunner, LIBVIRT_SYSTEM_URI, type VirshResult } from '../../../src/host/libvirt.js';
import { hasCode } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';

// Outputs as virsh 9.0 prints them (LC_ALL=C), recorded against libvirt's test driver: see
// test/interop/libvirt-domain.test.ts, which runs the real virsh.
const NOT_FOUND = "error: failed to get domain 'nope'\n";
const SHUT_OFF = 'error: Domain is not running\n';
const NO_SPICE = "error: No graphical display with type 'spice' found\n";

/** A virsh stand-in that answers from a table keyed by the connection (-c URI, or "" for the default). */
function scripted(answers: Record<string, VirshResult>) {
  const calls: string[][] = [];
  const run = async (args: string[]) => {
    calls.push(args);
    const c = args[0] === '-c' ? (args[1] as string) : '';
    const a = answers[c];
    if (!a) throw new Error(`unexpected connection ${c}`);
    return a;
  };
  return { run, calls };
}
const ok = (stdout: string): VirshResult => ({ code: 0, stdout, stderr: '' });
const fail = (stderr: string): VirshResult => ({ code: 1, stdout: '\n', stderr });

test('DomainLocator: asks virsh domdisplay --type spice for the domain, on the given connection', async () => {
  const v = scripted({ 'qemu+ssh://h/system': ok('spice://10.0.0.2:5900\n') });
  const loc = new DomainLocator({ domain: 'vm', connect: 'qemu+ssh://h/system', run: v.run });
  assert.deepEqual(await loc.locate(), { host: '10.0.0.2', port: 5900 });
  assert.deepEqual(v.calls, [['-c', 'qemu+ssh://h/system', 'domdisplay', '--type', 'spice', '--include-password', '--domain', 'vm']]);
  // With a password from elsewhere, libvirt's is not asked for.
  const w = scripted({ x: ok('spice://10.0.0.2:5900\n') });
  await new DomainLocator({ domain: 'vm', connect: 'x', password: false, run: w.run }).locate();
  assert.deepEqual(w.calls, [['-c', 'x', 'domdisplay', '--type', 'spice', '--domain', 'vm']]);
});

const FORBIDDEN = 'error: Failed to get domain description xml\nerror: operation forbidden: virDomainGetXMLDesc with secure flag\n';

test('DomainLocator: a connection that may not see the password gives the address alone, and is not asked again', async () => {
  const calls: string[][] = [];
  const run = async (args: string[]): Promise<VirshResult> => {
    calls.push(args);
    return args.includes('--include-password') ? fail(FORBIDDEN) : ok('spice://127.0.0.1:5900\n');
  };
  const loc = new DomainLocator({ domain: 'vm', connect: 'qemu:///system', run });
  assert.deepEqual(await loc.locate(), { host: '127.0.0.1', port: 5900 });
  await loc.locate();
  assert.deepEqual(calls.map((c) => c.includes('--include-password')), [true, false, false]);

  // libvirtd down: both forms fail; the password is still asked for once it is back.
  let down = true;
  const calls2: string[][] = [];
  const flaky = new DomainLocator({
    domain: 'vm',
    connect: 'x',
    run: async (args) => {
      calls2.push(args);
      return down ? fail('error: failed to connect to the hypervisor\n') : ok('spice://127.0.0.1:5900?password=pw\n');
    },
  });
  await assert.rejects(flaky.locate(), (e: Error) => hasCode(e, 'HOST_ERR_LIBVIRT'));
  down = false;
  assert.deepEqual(await flaky.locate(), { host: '127.0.0.1', port: 5900, password: 'pw' });
  assert.deepEqual(calls2.map((c) => c.includes('--include-password')), [true, false, true]);
});

test('DomainLocator: a domain unknown to the default connection is looked up in qemu:///system, which is then kept', async () => {
  const v = scripted({ '': fail(NOT_FOUND), [LIBVIRT_SYSTEM_URI]: ok('spice://127.0.0.1:5901\n') });
  const loc = new DomainLocator({ domain: 'vm', run: v.run });
  assert.deepEqual(await loc.locate(), { host: '127.0.0.1', port: 5901 });
  assert.equal(loc.connect, LIBVIRT_SYSTEM_URI);
  await loc.locate();
  assert.deepEqual(
    v.calls.map((c) => c[0] === '-c' ? c[1] : ''),
    ['', LIBVIRT_SYSTEM_URI, LIBVIRT_SYSTEM_URI],
  );

  // What qemu:///system says about the domain is its answer, not "no such domain"...
  const noSpice = scripted({ '': fail(NOT_FOUND), [LIBVIRT_SYSTEM_URI]: fail(NO_SPICE) });
  await assert.rejects(new DomainLocator({ domain: 'vm', run: noSpice.run }).locate(), (e: Error) => hasCode(e, 'HOST_ERR_NO_SPICE_DISPLAY'));
  // ...while a system connection that fails says nothing about it: still not found, and the default kept.
  const unreachable = scripted({ '': fail(NOT_FOUND), [LIBVIRT_SYSTEM_URI]: fail('error: failed to connect to the hypervisor\n') });
  const typo = new DomainLocator({ domain: 'nope', run: unreachable.run });
  await assert.rejects(typo.locate(), (e: Error) => hasCode(e, 'HOST_ERR_DOMAIN_NOT_FOUND'));
  assert.equal(typo.connect, undefined);
});

test('DomainLocator: errors carry stable codes and say what to do', async () => {
  const nowhere = new DomainLocator({ domain: 'nope', run: scripted({ '': fail(NOT_FOUND), [LIBVIRT_SYSTEM_URI]: fail(NOT_FOUND) }).run });
  await assert.rejects(nowhere.locate(), (e: Error) => hasCode(e, 'HOST_ERR_DOMAIN_NOT_FOUND') && /virsh list --all/.test(e.message) && /qemu:\/\/\/system/.test(e.message));

  // Only the given connection is asked when --connect is there.
  const given = scripted({ 'test:///default': fail(NOT_FOUND) });
  await assert.rejects(new DomainLocator({ domain: 'nope', connect: 'test:///default', run: given.run }).locate(), (e: Error) => hasCode(e, 'HOST_ERR_DOMAIN_NOT_FOUND'));
  assert.equal(given.calls.length, 1);

  const off = new DomainLocator({ domain: 'vm', connect: 'x', run: scripted({ x: fail(SHUT_OFF) }).run });
  await assert.rejects(off.locate(), (e: Error) => hasCode(e, 'HOST_ERR_DOMAIN_NOT_RUNNING') && /virsh start vm/.test(e.message));

  const vnc = new DomainLocator({ domain: 'vm', connect: 'x', run: scripted({ x: fail(NO_SPICE) }).run });
  await assert.rejects(vnc.locate(), (e: Error) => hasCode(e, 'HOST_ERR_NO_SPICE_DISPLAY'));

  const denied = new DomainLocator({ domain: 'vm', connect: 'x', run: scripted({ x: fail('error: failed to connect to the hypervisor\nerror: authentication failed: access denied\n') }).run });
  await assert.rejects(denied.locate(), (e: Error) => hasCode(e, 'HOST_ERR_LIBVIRT') && /failed to connect to the hypervisor; authentication failed: access denied/.test(e.message));

  const missing = new DomainLocator({
    domain: 'vm',
    run: () => Promise.reject(Object.assign(new Error('spawn virsh ENOENT'), { code: 'ENOENT' })),
  });
  await assert.rejects(missing.locate(), (e: Error) => hasCode(e, 'HOST_ERR_NO_VIRSH') && /libvirt-clients/.test(e.message) && /--spice/.test(e.message));
});

test('DomainLocator: a virsh without domdisplay --type is asked without it (once), and a VNC-first answer is refused', async () => {
  const calls: string[][] = [];
  const run = async (args: string[]): Promise<VirshResult> => {
    calls.push(args);
    return args.includes('--type') ? fail("error: command 'domdisplay' doesn't support option --type\n") : ok('spice://127.0.0.1:5900\n');
  };
  const loc = new DomainLocator({ domain: 'vm', connect: 'x', run });
  assert.deepEqual(await loc.locate(), { host: '127.0.0.1', port: 5900 });
  await loc.locate();
  assert.deepEqual(calls.map((c) => c.includes('--type')), [true, false, false]);
  // Without --type, virsh prints the first display of any type: a VNC one is not a SPICE address.
  const vncFirst = new DomainLocator({ domain: 'vm', connect: 'x', run: async (args) => (args.includes('--type') ? fail("error: command 'domdisplay' doesn't support option --type\n") : ok('vnc://127.0.0.1:1\n')) });
  await assert.rejects(vncFirst.locate(), (e: Error) => hasCode(e, 'HOST_ERR_NO_SPICE_DISPLAY'));
});

test('virshRunner: a virsh that does not answer is killed after the timeout, and the error says so', async (t) => {
  const dir = await tempDir(t);
  const hung = join(dir, 'virsh');
  await writeFile(hung, '#!/bin/sh\nexec sleep 10\n');
  await chmod(hung, 0o755);
  const loc = new DomainLocator({ domain: 'vm', connect: 'qemu:///system', run: virshRunner({ program: hung, timeoutMs: 300 }) });
  await assert.rejects(loc.locate(), (e: Error) => hasCode(e, 'HOST_ERR_LIBVIRT') && /virsh did not answer within 0\.3 s/.test(e.message));
});

test('virshRunner: a virsh that did not answer is not asked again without the password; an aborted call kills it', async (t) => {
  const dir = await tempDir(t);
  const hung = join(dir, 'virsh');
  const calls = join(dir, 'calls');
  await writeFile(hung, `#!/bin/sh\necho "$@" >> ${calls}\nexec sleep 10\n`);
  await chmod(hung, 0o755);
  const slow = new DomainLocator({ domain: 'vm', connect: 'x', run: virshRunner({ program: hung, timeoutMs: 300 }) });
  await assert.rejects(slow.locate(), (e: Error) => hasCode(e, 'HOST_ERR_LIBVIRT'));
  assert.equal((await readFile(calls, 'utf8')).trim().split('\n').length, 1, 'one call: no answer is no answer, with or without --include-password');

  const stopped = new DomainLocator({ domain: 'vm', connect: 'x', run: virshRunner({ program: hung, timeoutMs: 60_000 }) });
  const abort = new AbortController();
  const located = stopped.locate(abort.signal);
  setTimeout(() => abort.abort(), 200);
  await assert.rejects(located, { name: 'AbortError' });
});

test('virshRunner: a virsh that cannot be run at all says why', async (t) => {
  const dir = await tempDir(t);
  const notExecutable = join(dir, 'virsh');
  await writeFile(notExecutable, '#!/bin/sh\n');
  const loc = new DomainLocator({ domain: 'vm', connect: 'x', run: virshRunner({ program: notExecutable }) });
  await assert.rejects(loc.locate(), (e: Error) => hasCode(e, 'HOST_ERR_LIBVIRT') && /cannot run virsh: .*EACCES/.test(e.message));
});

test('DomainLocator: a remote connection gets the remote host for a wildcard listener', async () => {
  const v = scripted({ 'qemu+ssh://vmhost/system': ok('spice://localhost:5901?tls-port=5902\n') });
  assert.deepEqual(await new DomainLocator({ domain: 'vm', connect: 'qemu+ssh://vmhost/system', run: v.run }).locate(), { host: 'vmhost', port: 5901, tlsPort: 5902 });
});
