import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AvahiAdvertiser, MDNS_SERVICE_NAME, MDNS_SERVICE_TYPE } from '../../../src/guest/mdns.js';
import { DbusConnection } from '../../../src/guest/dbus.js';
import { tempDir } from '../../helpers/tmp.js';
import { requireTool } from '../../helpers/tools.js';
import { within } from './helpers.js';

// A private "system" bus and an avahi-daemon on it, restricted to lo: the real peer of the advertiser, without
// touching the machine's own bus. avahi-daemon keeps its pid file in /run/avahi-daemon, so only one can run.
const BUS_CONF = (socket: string): string => `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_type="method_call"/><allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
`;
const AVAHI_CONF = '[server]\nallow-interfaces=lo\nenable-dbus=yes\n[publish]\npublish-hinfo=no\npublish-workstation=no\n';
const A = 'org.freedesktop.Avahi';

function started(child: ChildProcess, marker: string, ms: number): Promise<string> {
  let out = '';
  return within(
    new Promise<string>((resolve, reject) => {
      const on = (d: Buffer): void => {
        out += d.toString();
        if (out.includes(marker)) resolve(out);
      };
      child.stdout?.on('data', on);
      child.stderr?.on('data', on);
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    }),
    ms,
    `"${marker}" from ${String(child.spawnfile)}`,
  );
}

test('real avahi-daemon: the record resolves on lo with port and TXT, and is gone after withdraw', async (t) => {
  if (!requireTool(t, 'dbus-daemon', 'dbus-daemon') || !requireTool(t, 'avahi-daemon', 'avahi-daemon')) return;
  if (process.getuid?.() !== 0) return t.skip('avahi-daemon --no-drop-root needs root');
  const dir = await tempDir(t);
  const busPath = join(dir, 'bus');
  writeFileSync(join(dir, 'bus.conf'), BUS_CONF(busPath));
  writeFileSync(join(dir, 'avahi.conf'), AVAHI_CONF);
  const kill = (c: ChildProcess): void => {
    if (c.exitCode === null) c.kill();
  };
  const dbus = spawn('dbus-daemon', ['--config-file', join(dir, 'bus.conf'), '--nofork', '--print-address'], { stdio: 'pipe' });
  t.after(() => kill(dbus));
  await started(dbus, 'unix:path=', 5000);
  const avahi = spawn('avahi-daemon', ['--no-drop-root', '--no-chroot', '--no-rlimits', '-f', join(dir, 'avahi.conf')], {
    stdio: 'pipe',
    env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${busPath}` },
  });
  t.after(async () => {
    kill(avahi);
    if (avahi.exitCode === null) await once(avahi, 'exit');
  });
  try {
    await started(avahi, 'Server startup complete', 10_000);
  } catch (err) {
    if (/already running/i.test(String(err))) return t.skip('another avahi-daemon runs on this machine');
    throw err;
  }

  const adv = new AvahiAdvertiser({ busPath });
  assert.equal(await adv.available(), true);
  await adv.publish(9843);
  const bus = await DbusConnection.connect(busPath);
  t.after(() => bus.close());
  const lo = Number(readFileSync('/sys/class/net/lo/ifindex', 'utf8'));
  const resolve = (): Promise<unknown[]> =>
    bus.call(A, '/', `${A}.Server`, 'ResolveService', 'iisssiu', [lo, -1, MDNS_SERVICE_NAME, MDNS_SERVICE_TYPE, 'local', -1, 0]);
  // (interface, protocol, name, type, domain, host, aprotocol, address, port, txt, flags)
  const r = await within(resolve(), 10_000, 'ResolveService');
  assert.equal(r[0], lo, 'published on lo');
  assert.equal(r[2], MDNS_SERVICE_NAME);
  assert.equal(r[8], 9843);
  const txt = (r[9] as number[][]).map((b) => Buffer.from(b).toString()).sort();
  assert.deepEqual(txt, ['p=', 'path=/', 'u=']);

  await adv.withdraw();
  // avahi answers from its cache for about a second after the goodbye.
  await new Promise((res) => setTimeout(res, 2500));
  await assert.rejects(within(resolve(), 10_000, 'ResolveService after withdraw'), /TimeoutError|NotFound/);
  await adv.close();
});
