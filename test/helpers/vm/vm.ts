import { connect, type Socket } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentClient, type ExecResult } from './agent-client.js';
import { AGENT_PORT_NAME } from './guest-scripts.js';
import type { GuestImage } from '../../../src/vm/image.js';
import type { ProcessGroup } from '../../../src/vm/process-group.js';
import { bounded, freePort, qemuArgs, startQemu, WEBDAV_PORT_NAME } from '../../../src/vm/qemu.js';

export { bounded, freePort, WEBDAV_PORT_NAME } from '../../../src/vm/qemu.js';

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
    const args = qemuArgs({
      kernel: options.image.kernel, initrd: options.image.initrd, smp: options.smp, memoryMiB: options.memoryMiB,
      serial: `file:${join(dir, 'serial.log')}`, spicePort,
      ports: [
        {
          name: WEBDAV_PORT_NAME,
          chardev: spicePort !== undefined ? `spiceport,name=${WEBDAV_PORT_NAME}` : `socket,path=${webdavSocket},server=on,wait=off`,
        },
        // The agent's port comes last: /init waits for it, by then the webdav port is there too.
        { name: AGENT_PORT_NAME, chardev: `socket,path=${agentSocket},server=on,wait=off` },
      ],
      append: `sdwatchdog=${options.watchdogSeconds ?? 900}`,
    });
    const started = Date.now();
    const qemu = startQemu(args);
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

const abbreviate = (script: string): string => (script.length > 200 ? `${script.slice(0, 200)}…` : script).replace(/\s+/g, ' ');
