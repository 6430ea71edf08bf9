import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

/** How to start a lean QEMU whose only job is to run a SPICE server (no guest OS, CPUs stopped with -S). */
export interface QemuOptions {
  /** Give the VM the webdav virtserialport (on a spiceport chardev, or on `socketPath`). Default true. */
  webdavPort?: boolean;
  /** Put the webdav virtserialport on `-chardev socket,path=…,server=on,wait=off` instead of spiceport. */
  socketPath?: string;
  /** Run a SPICE server (default true); false only makes sense with `socketPath`. */
  spice?: boolean;
  /** SPICE password through `-object secret` + `password-secret=` (QEMU ≥ 7.0); else disable-ticketing=on. */
  password?: string;
  /** Enable the TLS port with this x509 dir (ca-cert.pem, server-cert.pem, server-key.pem). */
  x509Dir?: string;
  /** Extra `-spice` sub-options, e.g. `tls-channel=main`. */
  spiceExtra?: string;
  /** Fixed ports, to restart a VM on the same ones; chosen free when omitted. */
  spicePort?: number;
  tlsPort?: number;
}

/** A running QEMU started by {@link startQemu}; killed when the test ends. */
export interface QemuVm {
  readonly spicePort: number;
  readonly tlsPort: number | undefined;
  readonly process: ChildProcess;
  /** Kill QEMU (SIGKILL) and wait for it to exit. Idempotent. */
  kill(): Promise<void>;
  /** Start QEMU again with the same options and ports (after kill()). */
  restart(): Promise<void>;
  /** What QEMU printed on stderr, for failure messages. */
  stderr(): string;
}

const READY_TIMEOUT_MS = 20_000;

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

function qemuArgs(o: QemuOptions, spicePort: number, tlsPort: number | undefined): string[] {
  const args = [
    '-machine', 'q35', '-accel', 'tcg', '-m', '64', '-nodefaults', '-no-user-config', '-display', 'none',
    '-vga', 'none', '-nic', 'none', '-monitor', 'none', '-serial', 'none', '-S',
  ];
  if (o.spice !== false) {
    const spice = [`port=${spicePort}`, 'addr=127.0.0.1'];
    if (o.password !== undefined) {
      args.push('-object', `secret,id=spicepw,data=${o.password}`);
      spice.push('password-secret=spicepw');
    } else {
      spice.push('disable-ticketing=on');
    }
    if (o.x509Dir !== undefined) spice.push(`tls-port=${tlsPort}`, `x509-dir=${o.x509Dir}`);
    if (o.spiceExtra) spice.push(o.spiceExtra);
    args.push('-spice', spice.join(','));
  }
  if (o.webdavPort !== false) {
    const chardev = o.socketPath !== undefined
      ? `socket,id=webdav0,path=${o.socketPath},server=on,wait=off`
      : 'spiceport,id=webdav0,name=org.spice-space.webdav.0';
    args.push(
      '-device', 'virtio-serial-pci,id=vser0',
      '-chardev', chardev,
      '-device', 'virtserialport,bus=vser0.0,chardev=webdav0,name=org.spice-space.webdav.0',
    );
  }
  return args;
}

async function canConnect(port: number): Promise<boolean> {
  const s = connect({ host: '127.0.0.1', port });
  try {
    await Promise.race([once(s, 'connect'), once(s, 'error').then(([e]) => Promise.reject(e))]);
    return true;
  } catch {
    return false;
  } finally {
    s.destroy();
  }
}

/**
 * Start QEMU for a test: TCG, no disk, no kernel, CPUs stopped, SPICE on 127.0.0.1 (free ports unless given).
 * Resolves once the SPICE port (or, without SPICE, the chardev socket) accepts connections; every wait is
 * bounded. The process is killed when the test ends.
 */
export async function startQemu(t: Pick<TestContext, 'after'>, options: QemuOptions = {}): Promise<QemuVm> {
  const spicePort = options.spicePort ?? (await freePort());
  const tlsPort = options.x509Dir !== undefined ? (options.tlsPort ?? (await freePort())) : undefined;
  let proc: ChildProcess;
  let stderr = '';
  let exited: Promise<void>;

  const start = async () => {
    stderr = '';
    proc = spawn('qemu-system-x86_64', qemuArgs(options, spicePort, tlsPort), { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    exited = once(proc, 'exit').then(() => undefined);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`QEMU exited early: ${stderr}`);
      const up = options.spice === false ? await socketReady(options.socketPath as string) : await canConnect(spicePort);
      if (up) return;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`QEMU's SPICE server did not come up within ${READY_TIMEOUT_MS} ms: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
  };

  await start();
  t.after(kill);
  return {
    spicePort,
    tlsPort,
    get process() {
      return proc;
    },
    kill,
    restart: start,
    stderr: () => stderr,
  };
}

async function socketReady(path: string): Promise<boolean> {
  const { access } = await import('node:fs/promises');
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
