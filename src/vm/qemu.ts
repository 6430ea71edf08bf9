import { accessSync, constants, createWriteStream, existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { writeCpio } from './cpio.js';
import type { BootKernel } from './kernel.js';
import { ProcessGroup } from './process-group.js';
import { findProgram, MissingPackagesError } from './requirements.js';
import { RootFs } from './rootfs.js';

/** The virtio port name spice-webdavd and `spicedav guest` open (/dev/virtio-ports/<name>). */
export const WEBDAV_PORT_NAME = 'org.spice-space.webdav.0';

/** The QEMU binary, and its Debian package. */
export const QEMU = 'qemu-system-x86_64';
export const QEMU_PACKAGE = 'qemu-system-x86';

/** A virtio serial port of the guest and the QEMU `-chardev` backing it (without its `id=`). */
export interface VirtioPort {
  name: string;
  chardev: string;
}

/** How to launch QEMU for a guest booted straight from a kernel and an initramfs. */
export interface QemuLaunch {
  kernel: BootKernel;
  initrd: string;
  /** Kernel command line after `console=ttyS0 quiet loglevel=3 panic=-1`. */
  append?: string;
  /** `-accel` values, tried in order by QEMU (see chooseAccel). Default: TCG. */
  accel?: string[];
  smp?: number;
  memoryMiB?: number;
  /** QEMU's `-serial` value: `file:PATH`, `chardev:ID`... */
  serial: string;
  /** Extra `-chardev` definitions (id included), e.g. the console socket that `serial: 'chardev:ID'` names. */
  chardevs?: string[];
  /** SPICE on 127.0.0.1:<port> without a ticket: the webdav port can then be a `spiceport` chardev. */
  spicePort?: number;
  /** The guest's virtio serial ports, in this order (a guest waiting for the last one then has them all). */
  ports: VirtioPort[];
}

/** The default acceleration: TCG, multi-threaded (KVM is tried only when chooseAccel found it usable). */
export const TCG = 'tcg,thread=multi';

/**
 * QEMU's arguments for a headless, network-less guest: no default devices, no display, no monitor, the serial
 * console where `serial` says, SPICE (when asked) on loopback only, and a virtio-serial bus with `ports`.
 */
export function qemuArgs(o: QemuLaunch): string[] {
  const accel = (o.accel?.length ? o.accel : [TCG]).flatMap((a) => ['-accel', a]);
  const chardevs = (o.chardevs ?? []).flatMap((c) => ['-chardev', c]);
  const ports = o.ports.flatMap((p, i) => [
    '-chardev', `${p.chardev},id=port${i}`,
    '-device', `virtserialport,bus=vser0.0,chardev=port${i},name=${p.name}`,
  ]);
  return [
    ...accel, '-cpu', 'max', '-smp', String(o.smp ?? 1), '-m', String(o.memoryMiB ?? 1536),
    '-nodefaults', '-no-user-config', '-no-reboot', '-display', 'none', '-vga', 'none', '-nic', 'none',
    '-monitor', 'none', ...chardevs, '-serial', o.serial,
    ...(o.spicePort !== undefined ? ['-spice', `port=${o.spicePort},addr=127.0.0.1,disable-ticketing=on`] : []),
    '-device', 'virtio-serial-pci,id=vser0',
    ...ports,
    '-kernel', o.kernel.path, '-initrd', o.initrd,
    '-append', `console=ttyS0 quiet loglevel=3 panic=-1${o.append ? ` ${o.append}` : ''}`,
  ];
}

/**
 * Starts QEMU with `args` in a process group of its own (see ProcessGroup: it dies with this process however
 * that ends). Throws a MissingPackagesError when QEMU is not installed.
 */
export function startQemu(args: string[]): ProcessGroup {
  if (!findProgram(QEMU)) throw new MissingPackagesError([QEMU], [QEMU_PACKAGE]);
  return new ProcessGroup('qemu', QEMU, args);
}

/** The probe guest's line on the serial console when it reached /init. */
const PROBE_MARKER = 'SPICEDAV-KVM-PROBE-OK';
/** Bound on the probe boot: with working KVM a kernel reaches /init in about a second. */
const PROBE_TIMEOUT_MS = 8000;

/**
 * The `-accel` list for this host. KVM is used only where it really boots a guest: some hosts have a
 * /dev/kvm that opens but cannot run a stock kernel (it hangs, or `-cpu host` aborts), so the first call
 * boots `kernel` under KVM with a tiny busybox initramfs that prints a marker and powers off, bounded by a few
 * seconds, and caches the verdict in `cacheDir` (per kernel and QEMU build). Without a read-write /dev/kvm, or
 * when the probe fails, the answer is TCG. `SPICEDAV_VM_ACCEL=tcg|kvm` overrides the probe. The list ends
 * with TCG either way, so that QEMU falls back to it if KVM fails to initialise after all.
 */
export async function chooseAccel(kernel: BootKernel, cacheDir: string): Promise<string[]> {
  const forced = process.env.SPICEDAV_VM_ACCEL;
  if (forced === 'tcg') return [TCG];
  if (forced === 'kvm') return ['kvm', TCG];
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return [TCG];
  }
  const qemu = findProgram(QEMU);
  const busybox = findProgram('busybox');
  if (!qemu || !busybox) return [TCG];
  const st = statSync(realpathSync(qemu));
  const verdictFile = join(cacheDir, `accel-${basename(kernel.path)}-${st.size}-${Math.trunc(st.mtimeMs)}`);
  if (existsSync(verdictFile)) return readFileSync(verdictFile, 'utf8').trim() === 'kvm' ? ['kvm', TCG] : [TCG];
  const works = await probeKvm(kernel, realpathSync(busybox));
  await mkdir(cacheDir, { recursive: true });
  await writeFile(verdictFile, works ? 'kvm\n' : 'tcg\n');
  return works ? ['kvm', TCG] : [TCG];
}

async function probeKvm(kernel: BootKernel, busybox: string): Promise<boolean> {
  const dir = await mkdtemp(join(tmpdir(), 'spicedav-kvm-probe-'));
  try {
    const fs = new RootFs();
    fs.addCharDev('/dev/console', 5, 1);
    fs.addData('/bin/busybox', readFileSync(busybox), 0o755);
    fs.addData('/init', `#!/bin/busybox sh\n/bin/busybox echo ${PROBE_MARKER}\n/bin/busybox poweroff -f\n`, 0o755);
    const initrd = join(dir, 'probe.cpio');
    const out = createWriteStream(initrd);
    await writeCpio(fs.entries(), out);
    out.end();
    await once(out, 'close');
    const serial = join(dir, 'serial.log');
    const args = qemuArgs({ kernel, initrd, accel: ['kvm'], memoryMiB: 256, serial: `file:${serial}`, ports: [] });
    const qemu = startQemu(args);
    const deadline = Date.now() + PROBE_TIMEOUT_MS;
    let ok = false;
    while (Date.now() < deadline && !qemu.status) {
      if (existsSync(serial) && readFileSync(serial, 'utf8').includes(PROBE_MARKER)) {
        ok = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!ok && existsSync(serial)) ok = readFileSync(serial, 'utf8').includes(PROBE_MARKER);
    await qemu.stop(1000);
    return ok;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A TCP port free on 127.0.0.1 right now (QEMU binds it a moment later; collisions are unlikely on loopback). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.listen(0, '127.0.0.1', resolve).once('error', reject));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Rejects with `onTimeout()` when `p` has not settled after `ms`. */
export async function bounded<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.max(0, ms));
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
