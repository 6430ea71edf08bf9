// Shared by session-fuzz.test.ts and bench/fuzz-mux.ts: one seeded fuzz case against a whole MuxSession.
import assert from 'node:assert/strict';
import { encodeClose, encodeFrame, MuxSession, type MuxChannel, type MuxRole } from '../../../mux/index.js';
import { duplexPair } from '../../helpers/duplex-pair.js';
import { random, within } from './harness.js';

const MAX_CHANNEL_BUFFER = 4096;
const MAX_SESSION_BUFFER = 16384;
const MAX_CHANNELS = 6;
/** Largest chunk the fuzzer writes: the session may overshoot its bound by the chunk it is decoding. */
const MAX_CHUNK = 20_000;

/**
 * One case: a session in a random role, with small limits, is fed a random stream of frames (a few reused ids,
 * random sizes, size-0 closes, sometimes trailing garbage) in random chunks, while its channels behave at random
 * (read, stall, destroy, end, answer). The session must never throw or emit an unhandled error, must keep its
 * bounds (buffered bytes, channel count), and must close once the transport ends or dies.
 */
export async function sessionFuzzOnce(seed: number): Promise<void> {
  const r = random(seed);
  const role: MuxRole = r(2) === 0 ? 'host' : 'guest';
  const [side, peer] = duplexPair(1 + r(70_000));
  const session = new MuxSession(side, {
    role,
    maxChannelBuffer: MAX_CHANNEL_BUFFER,
    maxSessionBuffer: MAX_SESSION_BUFFER,
    maxChannels: MAX_CHANNELS,
    onChannelOverflow: r(4) === 0 ? 'pause' : 'destroy',
  });
  peer.on('data', () => {}); // whatever the session sends back is not the point here
  peer.on('error', () => {});
  const channels: MuxChannel[] = [];
  const behave = (ch: MuxChannel): void => {
    channels.push(ch);
    ch.on('error', () => {});
    switch (r(6)) {
      case 0: // stalled reader
        break;
      case 1:
        ch.once('data', () => ch.destroy());
        break;
      case 2:
        ch.end('bye');
        break;
      case 3:
        ch.on('data', (d: Buffer) => ch.write(d));
        break;
      default:
        ch.resume();
    }
  };
  session.on('channel', behave);
  if (role === 'guest') for (let i = r(4); i > 0; i--) behave(session.open());

  // Host role: more ids than maxChannels, so refusals happen too.
  const ids =
    role === 'guest'
      ? [...channels.map((c) => c.id), 99n]
      : [1n, 2n, -3n, BigInt.asIntN(64, 0xffffffff8a3c1f20n), 5n, 6n, 7n, 8n, 9n];
  const parts: Buffer[] = [];
  for (let n = 1 + r(40); n > 0; n--) {
    const id = ids[r(ids.length)] as bigint;
    if (r(5) === 0) parts.push(encodeClose(id));
    else parts.push(...encodeFrame(id, Buffer.alloc(r(8) === 0 ? 60_000 + r(5536) : 1 + r(3000), r(256))));
  }
  if (r(4) === 0) parts.push(Buffer.from([r(256), r(256), r(256)])); // truncated tail
  const stream = Buffer.concat(parts);
  for (let off = 0; off < stream.length; ) {
    const n = 1 + r(Math.min(stream.length - off, MAX_CHUNK));
    peer.write(stream.subarray(off, off + n));
    off += n;
    assert.ok(session.bufferedBytes <= MAX_SESSION_BUFFER + MAX_CHUNK, `seed ${seed}: session bound`);
    assert.ok(session.channelCount <= MAX_CHANNELS, `seed ${seed}: channel bound`);
  }
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(session.stats.peakBufferedBytes <= MAX_SESSION_BUFFER + MAX_CHUNK, `seed ${seed}: peak within bound`);

  const closed = new Promise((resolve) => session.once('close', resolve));
  if (r(2) === 0) {
    // Graceful end: readers catch up (releasing the transport), then the peer ends its side.
    for (const ch of channels) ch.resume();
    session.on('channel', (ch) => ch.resume());
    peer.end();
  } else {
    peer.destroy();
  }
  await within(5000, `seed ${seed}: session closes`, closed);
  assert.equal(session.channelCount, 0, `seed ${seed}: no live ids after close`);
}
