import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { MuxSession } from '../../../mux/index.js';
import type { MuxChannel } from '../../../mux/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { pattern as xorshiftBytes } from '../mux/harness.js';

/**
 * The bytes of a `SEND n` answer: the mux tests' xorshift stream, so a misplaced or repeated 64 KiB block shows
 * up (a repeating pattern would hide it).
 */
export function pattern(n: number): Buffer {
  return xorshiftBytes(1, n);
}

/**
 * The host end of the port for proxy tests: a unix socket listener (the proxy's UnixSocketPortDevice connects
 * to it) running a host-role MuxSession, with a tiny line protocol per channel standing in for the WebDAV server:
 * - `ECHO\n` then anything: echoed back;
 * - `SEND n\n`: n bytes of pattern(n), then the host closes the channel (a size-0 frame), like an HTTP server
 *   closing the connection;
 * - `ID\n`: the channel id in decimal and `\n`, channel kept open;
 * - `SINK n\n` then n bytes: answered with their sha256 in hex and `\n`.
 */
export class FakeHost {
  readonly path: string;
  /** Every channel id the host saw, in order (a reused id after a size-0 appears twice). */
  readonly ids: bigint[] = [];
  /** Ids whose channel the guest closed (its size-0 frame ended the host channel's readable side). */
  readonly ended: bigint[] = [];
  session: MuxSession | undefined;
  #server: Server | undefined;
  #socket: Socket | undefined;

  private constructor(path: string) {
    this.path = path;
  }

  static async start(t: TestContext): Promise<FakeHost> {
    const host = new FakeHost(join(await tempDir(t, 'spicedav-guest-'), 'port.sock'));
    await host.comeBack();
    t.after(() => host.leave());
    return host;
  }

  /** Listen again: the proxy's next connection attempt attaches. */
  async comeBack(): Promise<void> {
    const server = createServer({ allowHalfOpen: false }, (socket) => this.#onPort(socket));
    this.#server = server;
    server.listen(this.path);
    await once(server, 'listening');
  }

  /** The SPICE client goes away: drop the port connection and stop listening. */
  async leave(): Promise<void> {
    this.#socket?.destroy();
    this.#socket = undefined;
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  #onPort(socket: Socket): void {
    if (this.#socket) {
      socket.destroy();
      return;
    }
    this.#socket = socket;
    socket.on('error', () => {});
    const session = new MuxSession(socket, { role: 'host' });
    this.session = session;
    session.on('channel', (ch) => this.#serve(ch));
    socket.once('close', () => {
      if (this.#socket === socket) this.#socket = undefined;
    });
  }

  #serve(ch: MuxChannel): void {
    this.ids.push(ch.id);
    ch.on('error', () => {});
    ch.once('end', () => this.ended.push(ch.id));
    let head = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      ch.removeListener('data', onData);
      const [cmd, arg] = head.subarray(0, nl).toString().split(' ');
      const rest = head.subarray(nl + 1);
      if (cmd === 'ECHO') {
        if (rest.length) ch.write(rest);
        ch.pipe(ch);
      } else if (cmd === 'SEND') {
        Readable.from(chunks(pattern(Number(arg)))).pipe(ch);
      } else if (cmd === 'SINK') {
        const hash = createHash('sha256');
        let left = Number(arg);
        const take = (d: Buffer): void => {
          hash.update(d);
          left -= d.length;
          if (left <= 0) {
            ch.removeListener('data', take);
            ch.write(`${hash.digest('hex')}\n`);
          }
        };
        ch.on('data', take);
        if (rest.length) take(rest);
      } else if (cmd === 'ID') {
        ch.write(`${ch.id}\n`);
        ch.resume();
      }
    };
    ch.on('data', onData);
  }
}

function* chunks(buf: Buffer, size = 64 * 1024): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}
