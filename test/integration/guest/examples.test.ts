import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../helpers/paths.js';
import { tempDir } from '../../helpers/tmp.js';
import { requireTool } from '../../helpers/tools.js';
import { verifyUnit } from '../../helpers/systemd.js';
import { DEFAULT_GUEST_PORT } from '../../../src/guest/proxy.js';
import { LINUX_PORT_PATH } from '../../../src/guest/port-device.js';

const dir = join(repoRoot, 'examples', 'guest');
const read = (name: string): string => readFileSync(join(dir, name), 'utf8');

test('systemd unit: systemd-analyze verify is clean; restart on failure; bound to the port device', async (t) => {
  if (!requireTool(t, 'systemd-analyze', 'systemd')) return;
  const unit = read('spicedav-guest.service');
  const exec = /^ExecStart=(\S+) (.*)$/m.exec(unit);
  assert.ok(exec, 'has ExecStart');
  // Not /usr/local/bin/spicedav: with a distribution's or NodeSource's node, `npm install -g` puts it in /usr/bin.
  assert.equal(exec[1], 'spicedav', 'ExecStart names the program for systemd to find in /usr/local/bin or /usr/bin');
  assert.match(exec[2] as string, new RegExp(`guest --device ${LINUX_PORT_PATH.replace(/\./g, '\\.')} --port ${DEFAULT_GUEST_PORT}`));
  assert.match(unit, /^Restart=on-failure$/m);
  const escaped = execFileSync('systemd-escape', ['--path', '--suffix=device', LINUX_PORT_PATH], { encoding: 'utf8' }).trim();
  assert.ok(unit.includes(`BindsTo=${escaped}\n`), `BindsTo=${escaped}`);

  await verifyUnit(t, unit, exec[1] as string, 'spicedav-guest.service');
});

/**
 * The match keys of a udev rule line, evaluated as udev does for `==`: shell glob patterns, `|` alternatives.
 * Enough for our one rule; assignments are returned separately.
 */
function parseRule(line: string): { matches: Array<[string, string]>; assigns: Array<[string, string, string]> } {
  const matches: Array<[string, string]> = [];
  const assigns: Array<[string, string, string]> = [];
  for (const m of line.matchAll(/([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|:=|=)\s*"([^"]*)"/g)) {
    const [, key, op, value] = m as unknown as [string, string, string, string];
    if (op === '==') matches.push([key, value]);
    else assigns.push([key, op, value]);
  }
  return { matches, assigns };
}

function globMatch(pattern: string, value: string): boolean {
  return pattern.split('|').some((alt) => {
    const re = alt.replace(/[.+^${}()\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    return new RegExp(`^${re}$`).test(value);
  });
}

test('udev rule: matches the webdav port by name, not other virtio ports, and wants the unit', () => {
  const lines = read('70-spicedav-guest.rules')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'));
  assert.equal(lines.length, 1);
  const { matches, assigns } = parseRule(lines[0] as string);
  const device = (name: string): Record<string, string> => ({
    ACTION: 'add',
    SUBSYSTEM: 'virtio-ports',
    KERNEL: 'vport2p1',
    'ATTR{name}': name,
  });
  const matchesDevice = (dev: Record<string, string>): boolean =>
    matches.every(([key, pattern]) => dev[key] !== undefined && globMatch(pattern, dev[key] as string));
  const portName = LINUX_PORT_PATH.split('/').pop() as string;
  assert.ok(matchesDevice(device(portName)), `matches the port named ${portName}`);
  assert.ok(!matchesDevice(device('com.redhat.spice.0')), 'not the vdagent port');
  assert.ok(!matchesDevice(device('org.qemu.guest_agent.0')), 'not the guest agent port');
  assert.ok(!matchesDevice({ ...device(portName), ACTION: 'remove' }), 'only on add');
  assert.deepEqual(
    assigns.find(([k]) => k === 'ENV{SYSTEMD_WANTS}'),
    ['ENV{SYSTEMD_WANTS}', '+=', 'spicedav-guest.service'],
    'pulls in the example unit by its file name',
  );
  assert.ok(assigns.some(([k, , v]) => k === 'TAG' && v === 'systemd'), 'tagged for systemd (SYSTEMD_WANTS needs it)');
});

test('fstab line: davfs2 on the proxy port, does not block boot', () => {
  const line = read('fstab')
    .split('\n')
    .find((l) => l.trim() && !l.startsWith('#'));
  const fields = (line as string).split(/\s+/);
  assert.equal(fields.length, 6);
  assert.equal(fields[0], `http://localhost:${DEFAULT_GUEST_PORT}/`);
  assert.equal(fields[2], 'davfs');
  const opts = (fields[3] as string).split(',');
  for (const o of ['nofail', '_netdev', 'x-systemd.automount']) assert.ok(opts.includes(o), o);
});

test('gio recipe: mounts and unmounts dav://localhost:9843/', async (t) => {
  const tmp = await tempDir(t);
  const log = join(tmp, 'gio.log');
  // A stand-in gio that records its arguments.
  writeFileSync(join(tmp, 'gio'), `#!/bin/sh\necho "$@" >> ${log}\n[ "$1" = info ] && echo "local path: /run/user/1000/gvfs/dav:host=localhost,port=9843,ssl=false"\nexit 0\n`);
  chmodSync(join(tmp, 'gio'), 0o755);
  const env = { ...process.env, PATH: `${tmp}:${process.env.PATH ?? ''}` };
  const out = execFileSync('sh', [join(dir, 'mount-gio.sh'), 'mount'], { env, encoding: 'utf8' });
  assert.match(out, /mounted: \/run\/user\/1000\/gvfs\/dav:host=localhost,port=9843/);
  execFileSync('sh', [join(dir, 'mount-gio.sh'), 'unmount'], { env });
  assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [
    `mount dav://localhost:${DEFAULT_GUEST_PORT}/`,
    `info -f dav://localhost:${DEFAULT_GUEST_PORT}/`,
    `mount -u dav://localhost:${DEFAULT_GUEST_PORT}/`,
  ]);
});

test('Windows WebClient registry fix: FileSizeLimitInBytes = 0xffffffff under WebClient\\Parameters', () => {
  const reg = read('webclient-filesize.reg');
  assert.match(reg, /^Windows Registry Editor Version 5\.00/);
  assert.match(reg, /^\[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\WebClient\\Parameters\]$/m);
  assert.match(reg, /^"FileSizeLimitInBytes"=dword:ffffffff$/m);
  assert.match(reg, /UNTESTED/);
});
