import test from 'node:test';
import assert from 'node:assert/strict';
import { MuxSession, type MuxChannel } from '../../../mux/index.js';
import { duplexPair } from '../../helpers/duplex-pair.js';
import { pattern, RawPeer, sessionPair, until, within } from './harness.js';

const KiB = 1024;
const MiB = 1 << 20;

test('outbound: a transport that does not drain holds the write callbacks, and write() returns false', async () => {
  const [peerSide, guestSide] = duplexPair(64 * KiB);
  const guest = new MuxSession(guestSide, { role: 'guest' });
  const ch = guest.open();
  const data = pattern(1, 4 * MiB);
  let callbacks = 0;
  let refused = false;
  for (let off = 0; off < data.length; off += 64 * KiB) {
    if (!ch.write(data.subarray(off, off + 64 * KiB), () => callbacks++)) refused = true;
  }
  await RawPeer.settle();
  assert.ok(refused, 'write() returned false');
  // Only what fits in the transport's buffer and the peer's readable buffer went out (a couple of frames).
  assert.ok(guest.stats.bytesOut <= 4 * 65535, `bytes out ${guest.stats.bytesOut}`);
  assert.ok(callbacks <= 2, `write callbacks held (${callbacks} called)`);
  assert.ok(ch.writableLength >= 3 * MiB, 'the rest waits in the channel, upstream of the mux');

  const peer = new RawPeer(peerSide); // the other end starts reading
  await until(() => callbacks === 64, 'every write completed');
  await until(() => peer.frames.reduce((n, f) => n + f.payload.length, 0) === data.length, 'all bytes arrived');
  assert.deepEqual(Buffer.concat(peer.frames.map((f) => f.payload)), data);
  await guest.destroy();
});

test('inbound: unread data across channels reaching maxSessionBuffer pauses the transport, and reading resumes it', async () => {
  const maxSessionBuffer = MiB;
  const { host, guest } = sessionPair({ maxSessionBuffer, maxChannelBuffer: MiB });
  // Channels are left unread (paused) until `startReading`; those that arrive later are read at once.
  const bodies = new Map<bigint, Promise<Buffer>>();
  const paused: MuxChannel[] = [];
  let reading = false;
  const read = (ch: MuxChannel): void => {
    bodies.set(
      ch.id,
      new Promise<Buffer>((resolve) => {
        const parts: Buffer[] = [];
        ch.on('data', (d: Buffer) => parts.push(d));
        ch.on('end', () => resolve(Buffer.concat(parts)));
      }),
    );
  };
  host.on('channel', (ch) => {
    ch.on('error', () => {}); // the guest goes away at the end: transport loss errors these
    if (reading) read(ch);
    else paused.push(ch);
  });
  const sent = [0, 1, 2, 3].map((i) => pattern(i + 10, 600 * KiB));
  const writers = sent.map((data) => {
    const ch = guest.open();
    ch.end(data);
    return ch;
  });
  await until(() => host.stats.transportPauses > 0, 'transport paused');
  await RawPeer.settle();
  const before = guest.stats.bytesOut;
  await RawPeer.settle();
  assert.equal(guest.stats.bytesOut, before, 'the guest is held back: nothing more goes out');
  assert.ok(host.bufferedBytes >= maxSessionBuffer, `buffered ${host.bufferedBytes}`);
  assert.ok(host.bufferedBytes <= maxSessionBuffer + 64 * KiB + 10, 'within the bound plus one transport chunk');
  assert.ok(
    writers.some((w) => w.writableLength > 0),
    'backpressure reached the guest writers',
  );
  assert.equal(host.stats.overflows, 0, 'no channel was over its own bound');

  reading = true;
  paused.forEach(read);
  await until(() => bodies.size === 4, 'all four channels');
  const got = await within(10_000, 'all bodies', Promise.all(writers.map((w) => bodies.get(w.id) as Promise<Buffer>)));
  assert.deepEqual(got, sent);
  assert.equal(host.bufferedBytes, 0);
  await guest.destroy();
});
