import { connect } from 'node:net';
import { stat } from 'node:fs/promises';
import { connectSpice, parseSpiceUri, SPICE_CHANNEL_WEBDAV, type SpiceAddress, type SpiceTlsOptions } from '../spice/index.js';
import { DomainLocator, ONE_CLIENT_HOWTO, WEBDAV_PORT_HOWTO, type DomainSpiceAddress, type VirshRunner } from '../host/index.js';
import type { CheckResult } from './report.js';

export interface HostDoctorOptions {
  /** The VM's SPICE server, as for `share --spice`. */
  spice?: string;
  /** Or a libvirt domain, as for `share --domain` (with `connect`, as for `share --connect`). */
  domain?: string;
  connect?: string;
  /** How virsh is run (tests). */
  virsh?: VirshRunner;
  /** Or the QEMU chardev socket, as for `share --qemu-socket`. */
  qemuSocket?: string;
  password?: string;
  tls?: SpiceTlsOptions;
  /** Link even when a viewer is connected (it gets disconnected). */
  takeOver?: boolean;
  /** Who else is connected to a local SPICE port (the CLI passes its /proc scan). */
  viewerCheck?: (host: string, port: number | undefined) => Promise<string | undefined>;
  timeoutMs?: number;
}

const GUEST_FIX = 'In the guest: spicedav guest   (or enable it at boot: examples/guest/spicedav-guest.service)';

function reachable(host: string, port: number, timeoutMs: number): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      resolve(new Error(`no answer within ${timeoutMs / 1000}s`));
    });
    s.once('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', (err) => resolve(err));
  });
}

async function spiceChecks(o: HostDoctorOptions, address: DomainSpiceAddress, results: CheckResult[] = []): Promise<CheckResult[]> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const port = address.port ?? address.tlsPort!;
  const err = await reachable(address.host, port, Math.min(timeoutMs, 5000));
  if (err) {
    results.push({
      name: 'SPICE server',
      status: 'fail',
      detail: `${address.host}:${port}: ${err.message}`,
      fix: o.domain
        ? `libvirt gave this address, but nothing answers there: is QEMU still starting, or does a firewall block it? \`virsh domdisplay ${o.domain}\` shows what libvirt says now.`
        : 'Is the VM running with -spice port=...? For a libvirt VM, `virsh domdisplay VM` gives the address (or use --domain VM).',
    });
    return results;
  }
  results.push({ name: 'SPICE server', status: 'ok', detail: `${address.host}:${port} accepts connections` });

  const viewer = await o.viewerCheck?.(address.host, port).catch(() => undefined);
  if (viewer && !o.takeOver) {
    results.push({ name: 'SPICE client', status: 'warn', detail: `${viewer} is connected to this VM; not linking (that would disconnect it)`, fix: `${ONE_CLIENT_HOWTO}.\nRun doctor with --take-over to check the VM anyway.` });
    return results;
  }
  results.push({ name: 'SPICE client', status: 'ok', detail: viewer ? `${viewer} was connected (taken over)` : 'no other client is connected' });

  let session;
  try {
    session = await connectSpice({ ...address, password: o.password ?? address.password, tls: o.tls, linkTimeoutMs: timeoutMs });
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    return [...results, { name: 'SPICE link', status: 'fail', detail: (e as Error).message, fix: code.includes('PASSWORD') || code.includes('PERMISSION') ? 'Give the password with --password-file FILE or SPICE_PASSWORD.' : undefined }];
  }
  try {
    results.push({ name: 'SPICE link', status: 'ok', detail: `linked (session ${session.sessionId}${session.secure ? ', TLS' : ''})` });
    if (!session.channels.some((c) => c.type === SPICE_CHANNEL_WEBDAV)) {
      results.push({ name: 'webdav port', status: 'fail', detail: 'the VM has no org.spice-space.webdav.0 port', fix: WEBDAV_PORT_HOWTO.replace(/^add/, 'Add').replace(/ ; /, '\n') });
      return results;
    }
    results.push({ name: 'webdav port', status: 'ok', detail: 'the VM has the org.spice-space.webdav.0 port' });
    const portChannel = await session.openPort(SPICE_CHANNEL_WEBDAV);
    results.push(
      portChannel.opened
        ? { name: 'guest daemon', status: 'ok', detail: 'a program in the guest has the port open (spicedav guest or spice-webdavd)' }
        : { name: 'guest daemon', status: 'fail', detail: 'nothing in the guest has the port open', fix: GUEST_FIX },
    );
  } catch (e) {
    results.push({ name: 'webdav channel', status: 'fail', detail: (e as Error).message });
  } finally {
    await session.close().catch(() => {});
  }
  return results;
}

async function socketChecks(path: string, timeoutMs: number): Promise<CheckResult[]> {
  const st = await stat(path).catch(() => undefined);
  if (!st) {
    return [{ name: 'QEMU socket', status: 'fail', detail: `${path} does not exist`, fix: 'Start the VM with -chardev socket,id=webdav0,path=' + path + ',server=on,wait=off on the webdav virtserialport (examples/host/qemu-socket.sh).' }];
  }
  if (!st.isSocket()) return [{ name: 'QEMU socket', status: 'fail', detail: `${path} is not a socket` }];
  const err = await new Promise<Error | undefined>((resolve) => {
    const s = connect({ path });
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      resolve(new Error('no answer'));
    });
    s.once('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', resolve);
  });
  return err
    ? [{ name: 'QEMU socket', status: 'fail', detail: `${path}: ${err.message} (QEMU not running, or a stale socket)`, fix: 'Start the VM (examples/host/qemu-socket.sh), then spicedav share --qemu-socket ' + path }]
    : [{ name: 'QEMU socket', status: 'ok', detail: `${path} accepts connections (whether the guest opened the port shows once shared)` }];
}

/** `--domain`: where libvirt says the domain's SPICE server is, then the SPICE checks there. */
async function domainChecks(o: HostDoctorOptions & { domain: string }): Promise<CheckResult[]> {
  const locator = new DomainLocator({ domain: o.domain, connect: o.connect, password: o.password === undefined, run: o.virsh });
  let address: DomainSpiceAddress;
  try {
    address = await locator.locate();
  } catch (err) {
    return [{ name: 'libvirt domain', status: 'fail', detail: (err as Error).message }];
  }
  const port = address.port !== undefined ? `port ${address.port}` : `TLS port ${address.tlsPort}`;
  const on = locator.connect ? ` on ${locator.connect}` : '';
  const pw = address.password !== undefined ? ', password from libvirt' : '';
  return spiceChecks(o, address, [{ name: 'libvirt domain', status: 'ok', detail: `${o.domain}${on}: SPICE at ${address.host}, ${port}${pw}` }]);
}

/** The host-side checks of `spicedav doctor --spice URI | --domain NAME | --qemu-socket PATH`. */
export async function hostChecks(o: HostDoctorOptions): Promise<CheckResult[]> {
  if (o.spice) {
    let address: SpiceAddress;
    try {
      address = parseSpiceUri(o.spice);
    } catch (err) {
      return [{ name: 'SPICE address', status: 'fail', detail: (err as Error).message }];
    }
    return spiceChecks(o, address);
  }
  if (o.domain) return domainChecks({ ...o, domain: o.domain });
  if (o.qemuSocket) return socketChecks(o.qemuSocket, o.timeoutMs ?? 5000);
  return [{ name: 'target', status: 'skip', detail: 'give --spice URI, --domain NAME or --qemu-socket PATH to check a VM' }];
}
