import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import type { GuestProxy, GuestProxyState } from '../../../src/guest/proxy.js';

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
