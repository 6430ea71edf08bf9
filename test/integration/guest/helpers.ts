import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { GuestProxy } from '../../../src/guest/proxy.js';
import type { GuestProxyState } from '../../../src/guest/proxy.js';
import { UnixSocketPortDevice } from '../../../src/guest/unix-socket-port-device.js';
import { tempDir } from '../../helpers/tmp.js';

/** Rejects after `ms` with `what` in the message; for bounding every wait. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
  ]);
}

/** Collect `n` bytes from `stream` without destroying it (unlike breaking out of for-await), bounded by `ms`. */
export function readBytes(stream: NodeJS.ReadableStream, n: number, ms = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => {
      stream.removeListener('data', onData);
      reject(new Error(`timed out with ${got}/${n} bytes`));
    }, ms);
    const onData = (c: Buffer): void => {
      chunks.push(c);
      got += c.length;
      if (got < n) return;
      clearTimeout(timer);
      stream.removeListener('data', onData);
      stream.pause();
      resolve(Buffer.concat(chunks));
    };
    stream.on('data', onData);
    stream.resume();
  });
}

/** Everything `socket` sends until it closes, bounded by `ms`. */
export function readToEnd(socket: Socket, ms = 5000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  // After readBytes() the socket is paused on purpose, and a new 'data' listener does not undo that.
  socket.resume();
  return within(
    once(socket, 'close').then(() => Buffer.concat(chunks)),
    ms,
    'socket close',
  );
}

/** A connected TCP client. */
export async function tcp(port: number, host = '127.0.0.1'): Promise<Socket> {
  const s = connect({ port, host });
  s.on('error', () => {});
  await within(once(s, 'connect'), 5000, `connect to ${host}:${port}`);
  return s;
}

/** Resolves when the proxy enters `state` (at once if it is there). */
export function stateReached(proxy: GuestProxy, state: GuestProxyState, ms = 5000): Promise<void> {
  if (proxy.state === state) return Promise.resolve();
  return within(
    new Promise<void>((resolve) => {
      const on = (e: { state: GuestProxyState }): void => {
        if (e.state !== state) return;
        proxy.removeListener('state', on);
        resolve();
      };
      proxy.on('state', on);
    }),
    ms,
    `proxy state ${state}`,
  );
}

/** The bytes the host side of the port receives, consumed in order. */
export class Wire {
  #buf = Buffer.alloc(0);
  #waiter: (() => void) | undefined;

  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#waiter?.();
    });
  }

  /** The next `n` bytes, waiting for them (bounded). */
  async take(n: number, ms = 3000): Promise<Buffer> {
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (this.#buf.length < n) return;
          this.#waiter = undefined;
          resolve();
        };
        this.#waiter = check;
        check();
      }),
      ms,
      `${n} bytes on the port`,
    );
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  get pending(): number {
    return this.#buf.length;
  }
}

/**
 * A proxy on a port whose host end is raw bytes, not our mux: `port` is the host's end, `wire` what it receives,
 * `tcpPort` the proxy's loopback port. Attached when it resolves.
 */
export async function rawHost(t: TestContext): Promise<{ proxy: GuestProxy; port: Socket; wire: Wire; tcpPort: number }> {
  const dir = await tempDir(t);
  const path = join(dir, 'port.sock');
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  t.after(() => server.close());
  const accepted = once(server, 'connection') as Promise<[Socket]>;

  const proxy = new GuestProxy({ device: new UnixSocketPortDevice({ path }), port: 0, hosts: ['127.0.0.1'], mdns: false });
  t.after(() => proxy.close());
  await proxy.start();
  const [port] = await within(accepted, 3000, 'proxy connects to the port');
  const wire = new Wire(port);
  await stateReached(proxy, 'attached');
  return { proxy, port, wire, tcpPort: (proxy.addresses[0] as { port: number }).port };
}
