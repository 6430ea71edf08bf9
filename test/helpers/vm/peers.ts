import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath as defaultCliPath } from '../paths.js';
import { ProcessGroup } from '../../../src/vm/process-group.js';
import { START_SPICE_WEBDAVD } from './guest-scripts.js';
import type { Vm } from './vm.js';

// The two ends of a chain: a host (spicy with phodav, or `spicedav share`) and a guest daemon (spice-webdavd,
// or `spicedav guest`). Host ends run on this machine in their own process group; guest ends run in the VM.

/** Where guest clients reach the share: the guest daemon's loopback listener. */
export const GUEST_URL = 'http://127.0.0.1:9843';

/** The built CLI as the guest image carries it (see the image's spicedav layer). */
export const GUEST_CLI = '/spicedav/dist/src/cli/index.js';

/**
 * Starts spicy (spice-gtk with phodav: the reference host) under a private Xvfb, connected to the VM's SPICE
 * port and sharing `dir`: spicy connects every port channel, webdav included, by itself.
 */
export function startSpicy(spicePort: number, dir: string): ProcessGroup {
  // xvfb-run removes its temp dir in an EXIT trap, which a signal skips: give it one that we remove ourselves.
  const tmp = mkdtempSync(join(tmpdir(), 'spicedav-xvfb-'));
  const group = new ProcessGroup('spicy', 'xvfb-run', [
    '-a', '-s', '-screen 0 640x480x24 -nolisten tcp',
    'spicy', '-h', '127.0.0.1', '-p', String(spicePort), `--spice-shared-dir=${dir}`,
    '--spice-disable-audio', '--spice-disable-usbredir',
  ], { env: { ...process.env, TMPDIR: tmp } });
  void group.exited.then(() => rmSync(tmp, { recursive: true, force: true }));
  return group;
}

/** How `spicedav share` reaches the VM. */
export type ShareTarget = { spicePort: number } | { qemuSocket: string };

/** Options of startShare. */
export interface StartShareOptions {
  /** Where the share keeps dead properties; give a temp dir so that a run leaves nothing in $HOME. */
  stateDir?: string;
  /** node options before the script (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  cli?: string;
}

/** Starts `spicedav share DIR` from the build under test, as users run it. */
export function startShare(dir: string, target: ShareTarget, options: StartShareOptions = {}): ProcessGroup {
  const how = 'spicePort' in target ? ['--spice', `spice://127.0.0.1:${target.spicePort}`] : ['--qemu-socket', target.qemuSocket];
  const state = options.stateDir ? ['--state-dir', options.stateDir] : [];
  return new ProcessGroup('spicedav share', process.execPath, [...(options.nodeArgs ?? []), options.cli ?? defaultCliPath, 'share', dir, ...how, ...state]);
}

/**
 * Why the spicedav chain cannot run yet, or null when it can: the build must have the CLI with its `share`
 * (with `--spice` and `--qemu-socket`) and `guest` commands. Asked of the CLI itself, so the e2e cases start
 * running the day those parts land, without a change here.
 */
export function spicedavChainMissing(cli = defaultCliPath): string | null {
  if (!existsSync(cli)) return `the spicedav CLI is not built yet (${cli} missing: src/cli/index.ts not written)`;
  const help = (...args: string[]): string => {
    const r = spawnSync(process.execPath, [cli, ...args, '--help'], { encoding: 'utf8', timeout: 20_000 });
    return r.status === 0 ? r.stdout : '';
  };
  const top = help();
  for (const command of ['share', 'guest']) {
    if (!new RegExp(`^\\s+${command}\\b`, 'm').test(top)) return `the spicedav CLI has no \`${command}\` command yet`;
  }
  const share = help('share');
  for (const option of ['--spice', '--qemu-socket']) {
    if (!share.includes(option)) return `\`spicedav share\` has no ${option} option yet`;
  }
  return null;
}

/** Starts the reference guest daemon (with the dbus + avahi it needs) in the guest. */
export async function startSpiceWebdavd(vm: Vm): Promise<void> {
  await vm.run(START_SPICE_WEBDAVD, { timeoutMs: 30_000 });
}

/** Stops spice-webdavd in the guest (dbus and avahi stay up for the next start). */
export async function stopSpiceWebdavd(vm: Vm): Promise<void> {
  await vm.run('killall spice-webdavd; i=0; while pidof spice-webdavd >/dev/null; do i=$((i+1)); [ $i -gt 100 ] && exit 1; usleep 50000; done', { timeoutMs: 15_000 });
}

/**
 * Starts `spicedav guest` from the image's build in the guest, logging to /tmp/spicedav-guest.log;
 * `nodeArgs` go to node before the script (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
export async function startSpicedavGuest(vm: Vm, nodeArgs: string[] = []): Promise<void> {
  await vm.run(`node ${nodeArgs.join(' ')} ${GUEST_CLI} guest >/tmp/spicedav-guest.log 2>&1 & echo $! >/tmp/spicedav-guest.pid`);
}

/** Stops the `spicedav guest` started by startSpicedavGuest, if one runs (SIGTERM, bounded). */
export async function stopSpicedavGuest(vm: Vm): Promise<void> {
  await vm.run('[ -f /tmp/spicedav-guest.pid ] || exit 0; pid=$(cat /tmp/spicedav-guest.pid); rm /tmp/spicedav-guest.pid; kill $pid; i=0; while kill -0 $pid 2>/dev/null; do i=$((i+1)); [ $i -gt 200 ] && exit 1; usleep 50000; done', { timeoutMs: 20_000 });
}

/** The guest daemon's log (for failure messages). */
export async function guestLog(vm: Vm, name: 'spicedav-guest' | 'spice-webdavd'): Promise<string> {
  return (await vm.exec(`tail -c 4000 /tmp/${name}.log 2>&1`, { timeoutMs: 10_000 })).output;
}
