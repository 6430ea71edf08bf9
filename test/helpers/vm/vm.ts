import { connect, createServer, type Socket } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient, type ExecResult } from './agent-client.js';
import { AGENT_PORT_NAME } from './guest-scripts.js';
import type { GuestImage } from './image.js';
import { ProcessGroup } from './process-group.js';

/** The virtio port name spice-webdavd and `spicedav guest` open (/dev/virtio-ports/<name>). */
export const WEBDAV_PORT_NAME = 'org.spice-space.webdav.0';

/** How to boot a test VM. */
export interface VmOptions {
  image: GuestImage;
  /**
   * What backs the webdav port: QEMU's SPICE server on 127.0.0.1 (a SPICE client such as spicy or
   * `spicedav share --spice` connects to `spicePort`), or a unix socket (`spicedav share --qemu-socket`
   * connects to `webdavSocket`), with no SPICE server at all.
   */
  webdav: 'spice' | 'qemu-socket';
  /** vCPUs (default 1): compare implementations only at the same count. */
  smp?: number;
  /** Guest RAM in MiB (default 1536: the initramfs, the tmpfs test files and node). */
  memoryMiB?: number;
  /** The guest powers itself off after this many seconds whatever happens (default 900). */
  watchdogSeconds?: number;
  /** Bound on QEMU start to agent ready (default 120 s: a loaded 2-core machine under TCG). */
  bootTimeoutMs?: number;
}

/** Options of one guest command. */
export interface ExecOptions {
  /** Bound on the command (default 60 s); on expiry the promise rejects, the guest command keeps running. */
  timeoutMs?: number;
}

/** A guest command failed or timed out; the message carries its output and the serial console's tail. */
export class VmError extends Error {}

/**
 * A QEMU guest booted from a test image (TCG, no network, SPICE or a socket on the webdav port) with the
 * agent port for running commands in it. Everything it starts lives in a private temp dir and QEMU's process
 * group; `close()` powers the guest off, kills what is left of that group and removes the dir.
 */
export class Vm {
  readonly dir: string;
  /** The SPICE server's port on 127.0.0.1 (webdav: 'spice'). */
  readonly spicePort: number | undefined;
  /** The unix socket QEMU listens on for the webdav port (webdav: 'qemu-socket'). */
  readonly webdavSocket: string | undefined;
  /** Milliseconds from QEMU's start to the agent's hello. */
  bootMs = 0;
  readonly #qemu: ProcessGroup;
  readonly #serial: string;
  #agent: AgentClient | null = null;
  #agentSocket: Socket | null = null;
  #closed = false;

  private constructor(dir: string, qemu: ProcessGroup, spicePort: number | undefined, webdavSocket: string | undefined) {
    this.dir = dir;
    this.#qemu = qemu;
    this.#serial = join(dir, 'serial.log');
    this.spicePort = spicePort;
    this.webdavSocket = webdavSocket;
  }

  /** Boots a guest and waits until its agent answers; on failure nothing is left running. */
  static async boot(options: VmOptions): Promise<Vm> {
    const dir = await mkdtemp(join(tmpdir(), 'spicedav-vm-'));
    const spicePort = options.webdav === 'spice' ? await freePort() : undefined;
    const webdavSocket = options.webdav === 'qemu-socket' ? join(dir, 'webdav.sock') : undefined;
    const agentSocket = join(dir, 'agent.sock');
    const webdavChardev = spicePort !== undefined
      ? ['-spice', `port=${spicePort},addr=127.0.0.1,disable-ticketing=on`,
        '-chardev', `spiceport,id=webdav,name=${WEBDAV_PORT_NAME}`]
      : ['-chardev', `socket,id=webdav,path=${webdavSocket},server=on,wait=off`];
    const args = [
      '-accel', 'tcg,thread=multi', '-cpu', 'max', '-smp', String(options.smp ?? 1), '-m', String(options.memoryMiB ?? 1536),
      '-nodefaults', '-no-user-config', '-no-reboot', '-display', 'none', '-vga', 'none', '-nic', 'none',
      '-monitor', 'none', '-serial', `file:${join(dir, 'serial.log')}`,
      '-device', 'virtio-serial-pci,id=vser0',
      ...webdavChardev,
      '-device', `virtserialport,bus=vser0.0,chardev=webdav,name=${WEBDAV_PORT_NAME}`,
      // The agent's port comes last: /init waits for it, by then the webdav port is there too.
      '-chardev', `socket,id=agent,path=${agentSocket},server=on,wait=off`,
      '-device', `virtserialport,bus=vser0.0,chardev=agent,name=${AGENT_PORT_NAME}`,
      '-kernel', options.image.kernel.path, '-initrd', options.image.initrd,
      '-append', `console=ttyS0 quiet loglevel=3 panic=-1 sdwatchdog=${options.watchdogSeconds ?? 900}`,
    ];
    const started = Date.now();
    const qemu = new ProcessGroup('qemu', 'qemu-system-x86_64', args);
    const vm = new Vm(dir, qemu, spicePort, webdavSocket);
    try {
      await vm.#attachAgent(agentSocket, options.bootTimeoutMs ?? 120_000);
      vm.bootMs = Date.now() - started;
      return vm;
    } catch (err) {
      await vm.close();
      throw err;
    }
  }

  async #attachAgent(path: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const qemuGone = this.#qemu.exited.then((s) => {
      throw new VmError(`QEMU exited (${s.code ?? s.signal}) during boot:\n${this.#qemu.output()}${this.#serialTail()}`);
    });
    qemuGone.catch(() => {});
    // QEMU creates the socket once it has parsed its arguments; connect as soon as it exists.
    for (;;) {
      if (this.#qemu.status) await qemuGone;
      if (existsSync(path)) {
        try {
          this.#agentSocket = await new Promise<Socket>((resolve, reject) => {
            const s = connect(path, () => resolve(s));
            s.once('error', reject);
          });
          break;
        } catch {
          // Not listening yet.
        }
      }
      if (Date.now() > deadline) throw new VmError(`QEMU did not open ${path} within ${timeoutMs} ms:\n${this.#qemu.output()}`);
      await sleep(50);
    }
    this.#agent = new AgentClient(this.#agentSocket);
    await bounded(Promise.race([this.#agent.ready, qemuGone]), deadline - Date.now(),
      () => new VmError(`the guest agent did not start within ${timeoutMs} ms${this.#serialTail()}`));
  }

  /** Runs a shell script in the guest and returns its status and output, whatever the status. */
  async exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (!this.#agent) throw new VmError('the VM is not running');
    const timeoutMs = options.timeoutMs ?? 60_000;
    return bounded(this.#agent.exec(script), timeoutMs,
      () => new VmError(`guest command timed out after ${timeoutMs} ms: ${abbreviate(script)}${this.#serialTail()}`));
  }

  /** Runs a shell script in the guest and returns its output; rejects with the output when it fails. */
  async run(script: string, options: ExecOptions = {}): Promise<string> {
    const r = await this.exec(script, options);
    if (r.code !== 0) throw new VmError(`guest command exited ${r.code}: ${abbreviate(script)}\n${r.output}`);
    return r.output;
  }

  /** The serial console so far: kernel messages, /init's markers and the stderr of its children. */
  serialLog(): string {
    try {
      return readFileSync(this.#serial, 'utf8');
    } catch {
      return '';
    }
  }

  #serialTail(): string {
    const log = this.serialLog().trimEnd();
    return log ? `\n--- serial console (tail) ---\n${log.split('\n').slice(-30).join('\n')}` : '';
  }

  /** Powers the guest off (bounded), kills whatever of QEMU's group is left, removes the temp dir. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#qemu.status) {
      this.#agent?.send('poweroff -f');
      await bounded(this.#qemu.exited, 5000, () => new VmError('poweroff timed out')).catch(() => {});
    }
    await this.#qemu.stop(2000);
    this.#agentSocket?.destroy();
    await rm(this.dir, { recursive: true, force: true });
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

const abbreviate = (script: string): string => (script.length > 200 ? `${script.slice(0, 200)}…` : script).replace(/\s+/g, ' ');
