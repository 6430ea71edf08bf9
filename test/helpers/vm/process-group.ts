import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** How a process group leader ended. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Every group started here and not yet reaped: killed if the test process exits without stopping them. */
const live = new Set<ProcessGroup>();
process.once('exit', () => {
  for (const g of live) g.signal('SIGKILL');
});

/** The most output kept per process, for failure messages. */
const OUTPUT_TAIL_BYTES = 64 * 1024;

/**
 * A program started as the leader of its own process group (QEMU, xvfb-run with Xvfb and spicy, a spicedav
 * CLI), so that stopping it stops everything it started and nothing else: signals go to that group only.
 * Keeps the tail of its stdout and stderr for diagnostics.
 */
export class ProcessGroup {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves when the leader has exited (never rejects; a failed spawn reports code null). */
  readonly exited: Promise<ExitStatus>;
  #status: ExitStatus | null = null;
  #output = '';

  constructor(name: string, command: string, args: string[], options: Omit<SpawnOptions, 'detached' | 'stdio'> = {}) {
    this.name = name;
    this.child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        keep(Buffer.from(`spawn ${command} failed: ${err.message}\n`));
        this.#status ??= { code: null, signal: null };
        live.delete(this);
        resolve(this.#status);
      });
      this.child.once('exit', (code, signal) => {
        this.#status ??= { code, signal };
        resolve(this.#status);
      });
      // The leader's exit does not end its group (xvfb-run's Xvfb); 'close' also waits for the pipes.
      this.child.once('close', () => live.delete(this));
    });
  }

  /** The leader's exit status, or null while it runs. */
  get status(): ExitStatus | null {
    return this.#status;
  }

  /** The last 64 KiB of what the group wrote to stdout and stderr. */
  output(): string {
    return this.#output;
  }

  /** Sends a signal to the whole group; a group that is already gone is not an error. */
  signal(sig: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // ESRCH: every member has exited.
    }
  }

  /**
   * Stops the group: SIGTERM, then SIGKILL after `graceMs`; resolves once the leader has exited (members that
   * ignore SIGTERM get the SIGKILL too). Idempotent.
   */
  async stop(graceMs = 3000): Promise<ExitStatus> {
    if (this.#status && !live.has(this)) return this.#status;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      const status = await this.exited;
      // Members may outlive the leader (xvfb-run exits before Xvfb): make sure they are gone too.
      this.signal('SIGKILL');
      return status;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the group at once (SIGKILL), as a crash or power cut would, and waits for the leader. */
  async kill(): Promise<ExitStatus> {
    this.signal('SIGKILL');
    return this.exited;
  }
}
