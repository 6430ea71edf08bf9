import test from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { openSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import { MuxSession } from '../../../mux/index.js';
import { createMemoryTransport } from '../../../src/host/index.js';
import { FdPortStream } from '../../../src/guest/fd-port-stream.js';
import { portCopiesWrites, pumpUpload } from '../../../src/guest/upload-pump.js';
import { duplexPair } from '../../helpers/duplex-pair.js';
import { RawPeer, until } from '../mux/harness.js';
import { tcp, within } from './helpers.js';

/** A local client connected to a pauseOnConnect server (as the proxy's), and the accepted socket. */
async function acceptedPair(t: TestContext): Promise<{ client: Socket; accepted: Socket }> {
  const server = createServer({ pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = await tcp((server.address() as { port: number }).port);
  const [socket] = await within(accepted, 5000, 'accept');
  t.after(() => {
    client.destroy();
    socket.destroy();
  });
  return { client, accepted: socket };
}

test('upload pump: an accepted socket is read into frames built in place, byte-exact, then the channel ends', async (t) => {
  const { client, accepted } = await acceptedPair(t);
  // An in-memory pair passes buffers on, which the pump may not reuse under (portCopiesWrites); RawPeer copies
  // each payload as it arrives, and that is what makes this pair a fit transport here.
  const [hostSide, guestSide] = duplexPair();
  const host = new RawPeer(hostSide);
  const guest = new MuxSession(guestSide, { role: 'guest' });
  t.after(() => guest.destroy());
  const ch = guest.open();
  let counted = 0;
  assert.equal(pumpUpload(accepted, ch, (chunk) => (counted += chunk.length)), true, 'this Node lets the pump read into its own buffers');
  accepted.resume();

  const data = randomBytes(4 * 1024 * 1024 + 123);
  client.end(data);
  await until(() => host.closesFor(ch.id) === 1, 'the size-0 frame after the upload', 20_000);
  const frames = host.frames.filter((f) => f.id === ch.id && f.payload.length > 0);
  assert.ok(Buffer.concat(frames.map((f) => f.payload)).equals(data), 'byte-exact, in order');
  assert.equal(counted, data.length);
  // Reads are sized so that a full one makes a 64 KiB frame (two whole 32 KiB port writes).
  assert.equal(Math.max(...frames.map((f) => f.payload.length)), 64 * 1024 - 10);
});

test('upload pump: a transport that does not drain stops the socket after a few frames (bounded memory)', async (t) => {
  const { client, accepted } = await acceptedPair(t);
  const [hostSide, guestSide] = duplexPair(16 * 1024);
  hostSide.pause(); // the host reads nothing: the transport's writes stay pending
  const guest = new MuxSession(guestSide, { role: 'guest' });
  t.after(() => guest.destroy());
  const ch = guest.open();
  let counted = 0;
  assert.equal(pumpUpload(accepted, ch, (chunk) => (counted += chunk.length)), true);
  accepted.resume();

  const data = randomBytes(16 * 1024 * 1024);
  client.write(data);
  await new Promise((r) => setTimeout(r, 500));
  // In flight at most: 8 frames of 65526 bytes (the pump's bound) plus what the session and the transport hold.
  assert.ok(counted <= 8 * 65526, `read ${counted} bytes while the transport was blocked`);
  assert.ok(counted > 0);

  const host = new RawPeer(hostSide);
  hostSide.resume();
  await until(() => counted === data.length, 'the whole upload read once the transport drains', 20_000);
  await until(() => host.dataFor(ch.id).length > 0, 'frames at the host');
});

// The pump reuses a buffer once its frame's write called back. Which ports that is safe on decides both
// correctness (the in-memory transport must be excluded: it passes buffers on by reference) and the guest's
// upload speed in a VM (the real port streams must be included).

test('the port streams of a real guest copy what they are written: the pump may run', async () => {
  const socket = new Socket();
  assert.equal(portCopiesWrites(socket), true, 'a socket (unix-socket device; the poll-based virtio stream is one too)');
  socket.destroy();
  const port = new FdPortStream(openSync('/dev/null', 'r+'));
  assert.equal(portCopiesWrites(port), true, 'the thread-pool virtio stream');
  port.destroy(); // closes the fd
  await finished(port).catch(() => {});
});

test('in-memory Duplexes hand buffers on: the pump must not run over them', async () => {
  assert.equal(portCopiesWrites(new PassThrough()), false);
  const { transport, guestEnd } = createMemoryTransport();
  transport.start();
  const guestSide = await guestEnd.open(new AbortController().signal);
  try {
    assert.equal(portCopiesWrites(guestSide), false, 'the transport of `spicedav demo`');
  } finally {
    await transport.close();
  }
});
