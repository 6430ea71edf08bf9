import type { Socket } from 'node:net';

/** What a guest script returned: its exit status and its combined stdout + stderr. */
export interface ExecResult {
  code: number;
  output: string;
}

/**
 * The host side of the guest agent (see AGENT_SCRIPT): sends "<id> <base64 script>\n" lines over the agent
 * port's unix socket and matches the "@@RESULT <id> <status> <bytes>\n<output>" answers to them, however
 * they interleave. Pure framing over a connected socket; the VM runner owns the socket.
 */
export class AgentClient {
  readonly #socket: Socket;
  readonly #pending = new Map<number, { resolve: (r: ExecResult) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #buf = Buffer.alloc(0);
  #hello!: () => void;
  #closedError: Error | null = null;
  /** Resolves when the agent announced itself (it writes @@HELLO once a host is connected to its port). */
  readonly ready: Promise<void>;

  constructor(socket: Socket) {
    this.#socket = socket;
    this.ready = new Promise((resolve) => (this.#hello = resolve));
    socket.on('data', (chunk: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, chunk]);
      this.#parse();
    });
    socket.on('close', () => this.#fail(new Error('the guest agent connection closed (guest powered off or QEMU exited)')));
    socket.on('error', (err) => this.#fail(err));
  }

  /** Runs `script` with /bin/sh in the guest; resolves with its status and output, whatever the status. */
  exec(script: string): Promise<ExecResult> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#socket.write(`${id} ${Buffer.from(script, 'utf8').toString('base64')}\n`);
    });
  }

  /** Sends a script without waiting for an answer (e.g. `poweroff -f`, which never answers). */
  send(script: string): void {
    if (!this.#closedError) this.#socket.write(`${this.#nextId++} ${Buffer.from(script, 'utf8').toString('base64')}\n`);
  }

  #parse(): void {
    for (;;) {
      const nl = this.#buf.indexOf(0x0a);
      if (nl < 0) return;
      const line = this.#buf.subarray(0, nl).toString('utf8');
      if (line === '@@HELLO') {
        this.#buf = this.#buf.subarray(nl + 1);
        this.#hello();
        continue;
      }
      const m = /^@@RESULT (\d+) (\d+) (\d+)$/.exec(line);
      if (!m) {
        // Not ours (a stray write to the port): skip the line rather than wedge every later answer.
        this.#buf = this.#buf.subarray(nl + 1);
        continue;
      }
      const size = Number(m[3]);
      if (this.#buf.length < nl + 1 + size) return;
      const output = this.#buf.subarray(nl + 1, nl + 1 + size).toString('utf8');
      this.#buf = this.#buf.subarray(nl + 1 + size);
      const id = Number(m[1]);
      this.#pending.get(id)?.resolve({ code: Number(m[2]), output });
      this.#pending.delete(id);
    }
  }

  #fail(err: Error): void {
    this.#closedError ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}
