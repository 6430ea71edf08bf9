import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** How a process group leader ended. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Every group started here and not yet reaped: killed if this process exits without stopping them. */
const live = new Set<ProcessGroup>();
process.once('exit', () => {
  for (const g of live) g.signal('SIGKILL');
});

// The group's leader is this shell. It runs the program and outlives it only to report its exit status (it
// survives the group's SIGTERM so that a program that drains before exiting is waited for). Its lifeline
// blocks reading our pipe and kills the whole group when the pipe closes: when this process dies by any
// means, SIGKILL included (exit handlers do not run then, and a detached QEMU or share would outlive us),
// or when the leader exits and we close the pipe, which takes any member the program left behind with it.
// (An asynchronous list's stdin is /dev/null, hence the pipe is kept as fd 3 first.)
const LEADER = `trap : TERM INT HUP
exec 3<&0
"$@" </dev/null 3<&- & child=$!
(trap - TERM INT HUP; while read -r _ <&3; do :; done; kill -KILL 0) >/dev/null 2>&1 &
wait $child; rc=$?
while kill -0 $child 2>/dev/null; do wait $child; rc=$?; done
exit $rc`;

/** The most output kept per process, for failure messages. */
const OUTPUT_TAIL_BYTES = 64 * 1024;

/**
 * A program started in a process group of its own (QEMU for `spicedav demo --vm` and the VM tests; xvfb-run
 * with Xvfb and spicy, a spicedav CLI in the tests), so that stopping it stops everything it started and
 * nothing else: signals go to that group only. The group dies with this process however it ends, SIGKILL
 * included (see LEADER). Keeps the tail of its stdout and stderr.
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
    this.child = spawn('sh', ['-c', LEADER, 'sh', command, ...args], { ...options, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(this);
    this.child.stdin?.on('error', () => {}); // EPIPE once the lifeline is gone: nothing to report
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
        this.child.stdin?.end();
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
