import { open, readdir, readFile, realpath } from 'node:fs/promises';
import { constants } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { localListenersOf, socketOwners } from './sockets.js';
import { fileHolders, type ProcessInfo } from './proc.js';
import type { CheckResult } from './report.js';

export const WEBDAV_PORT_NAME = 'org.spice-space.webdav.0';

export interface GuestDoctorOptions {
  /** The virtio port, default /dev/virtio-ports/org.spice-space.webdav.0. */
  device?: string;
  /** The proxy's TCP port, default 9843. */
  port?: number;
  /** Where virtio ports are listed (tests point this elsewhere). */
  sysfsPorts?: string;
  /** How long to wait for the share to answer an OPTIONS request. */
  timeoutMs?: number;
}

const HOST_FIX = `On the host, give the VM the webdav port, e.g. for QEMU:
  -device virtio-serial-pci -chardev spiceport,id=webdav0,name=${WEBDAV_PORT_NAME}
  -device virtserialport,chardev=webdav0,name=${WEBDAV_PORT_NAME}
or in libvirt (virsh edit VM, inside <devices>):
  <channel type='spiceport'><source channel='${WEBDAV_PORT_NAME}'/><target type='virtio' name='${WEBDAV_PORT_NAME}'/></channel>`;

/** Names of the virtio-serial ports this guest has, from sysfs (empty when not a VM with virtio-serial). */
async function virtioPortNames(sysfsPorts: string): Promise<string[]> {
  const ports = await readdir(sysfsPorts).catch(() => [] as string[]);
  const names = await Promise.all(ports.map((p) => readFile(`${sysfsPorts}/${p}/name`, 'utf8').catch(() => '')));
  return names.map((n) => n.trim()).filter(Boolean);
}

async function checkDevice(device: string, sysfsPorts: string): Promise<CheckResult[]> {
  const name = 'webdav port';
  let resolved: string;
  try {
    resolved = await realpath(device);
  } catch {
    const names = await virtioPortNames(sysfsPorts);
    const detail = names.length
      ? `${device} is missing; the VM has virtio ports (${names.join(', ')}) but not ${WEBDAV_PORT_NAME}`
      : `${device} is missing and this machine has no virtio-serial ports (not a VM, or the VM lacks the port)`;
    return [{ name, status: 'fail', detail, fix: HOST_FIX }];
  }
  const results: CheckResult[] = [{ name, status: 'ok', detail: `${device} → ${resolved}` }];
  // A virtio port can be open by one process only; a second open gets EBUSY.
  try {
    const fh = await open(resolved, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOCTTY);
    await fh.close();
    results.push({ name: 'port access', status: 'warn', detail: 'the port is free: no guest daemon has it open', fix: 'Start the guest proxy: spicedav guest   (or: systemctl enable --now spicedav-guest)' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EBUSY') {
      const holders = await fileHolders(resolved);
      const who = holders.map((h) => `${h.command} (pid ${h.pid})`).join(', ') || 'another process';
      const webdavd = holders.some((h) => /spice-webdavd/.test(h.command));
      results.push({
        name: 'port access',
        status: webdavd ? 'warn' : 'ok',
        detail: `held by ${who}`,
        fix: webdavd ? 'spice-webdavd holds the port; to use spicedav instead: systemctl disable --now spice-webdavd' : undefined,
      });
    } else if (code === 'EACCES' || code === 'EPERM') {
      results.push({ name: 'port access', status: 'fail', detail: `permission denied opening ${resolved}`, fix: 'Run the guest proxy as root (the systemd unit in examples/guest does).' });
    } else {
      results.push({ name: 'port access', status: 'fail', detail: `cannot open ${resolved}: ${(err as Error).message}` });
    }
  }
  return results;
}

function canConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function davOptions(host: string, port: number, timeoutMs: number): Promise<{ status: number; dav?: string } | 'timeout' | Error> {
  return new Promise((resolve) => {
    const req = request({ host, port, method: 'OPTIONS', path: '/', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, dav: res.headers.dav as string | undefined });
    });
    req.on('timeout', () => {
      req.destroy();
      resolve('timeout');
    });
    req.on('error', (err) => resolve(err));
    req.end();
  });
}

async function checkListener(port: number, timeoutMs: number): Promise<CheckResult[]> {
  const v4 = await canConnect('127.0.0.1', port, timeoutMs);
  const v6 = await canConnect('::1', port, timeoutMs);
  if (!v4 && !v6) {
    return [{ name: 'loopback listener', status: 'fail', detail: `nothing listens on 127.0.0.1:${port} or [::1]:${port}`, fix: 'Start the guest proxy: spicedav guest' }];
  }
  const owners: ProcessInfo[] = [...(await socketOwners(new Set((await localListenersOf(port)).map((e) => e.inode)))).values()];
  const who = owners.length ? ` by ${[...new Set(owners.map((o) => o.command))].join(', ')}` : '';
  const results: CheckResult[] = [
    v4 && v6
      ? { name: 'loopback listener', status: 'ok', detail: `127.0.0.1:${port} and [::1]:${port}${who}` }
      : {
          name: 'loopback listener',
          status: 'warn',
          detail: `only ${v4 ? `127.0.0.1:${port}` : `[::1]:${port}`}${who}`,
          fix: v4 ? 'Clients that resolve localhost to ::1 first (Windows) fail; spicedav guest listens on both.' : undefined,
        },
  ];
  const r = await davOptions(v4 ? '127.0.0.1' : '::1', port, timeoutMs);
  if (r === 'timeout') {
    results.push({ name: 'share', status: 'fail', detail: `no answer within ${timeoutMs / 1000}s: the host is not sharing`, fix: 'On the host: spicedav share DIR --spice spice://HOST:PORT (or --qemu-socket PATH)' });
  } else if (r instanceof Error) {
    results.push({ name: 'share', status: 'fail', detail: `the connection failed: ${r.message}`, fix: 'On the host: spicedav share DIR --spice spice://HOST:PORT (or --qemu-socket PATH)' });
  } else if (!r.dav) {
    results.push({ name: 'share', status: 'fail', detail: `port ${port} answered HTTP ${r.status} without a DAV header: not a WebDAV share` });
  } else {
    results.push({ name: 'share', status: 'ok', detail: `WebDAV (DAV: ${r.dav}) at http://localhost:${port}/` });
  }
  return results;
}

/** The guest-side checks of `spicedav doctor --guest`, in the order a person would debug. */
export async function guestChecks(options: GuestDoctorOptions = {}): Promise<CheckResult[]> {
  const device = options.device ?? `/dev/virtio-ports/${WEBDAV_PORT_NAME}`;
  const port = options.port ?? 9843;
  const timeoutMs = options.timeoutMs ?? 5000;
  return [...(await checkDevice(device, options.sysfsPorts ?? '/sys/class/virtio-ports')), ...(await checkListener(port, timeoutMs))];
}
