import test from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fc from 'fast-check';
import { MuxSession, type MuxChannel } from '../../../mux/index.js';
import { choppedPair, pattern, random, until, within } from './harness.js';

/** Largest piece choppedPair() cuts: the most the session may hold beyond `maxSessionBuffer`, plus one frame header. */
const MAX_PIECE = 70_000;

interface Client {
  up: number;
  down: number;
}

/** Writes `data` in pieces of random size, waiting for 'drain' whenever write() says so. */
async function writeAll(ch: MuxChannel, data: Buffer, rand: (n: number) => number): Promise<void> {
  for (let off = 0; off < data.length; ) {
    const n = 1 + rand(Math.min(data.length - off, 100_000));
    const more = ch.write(data.subarray(off, off + n));
    off += n;
    if (!more && !ch.destroyed) await once(ch, 'drain');
  }
}

/** Collects what `ch` delivers, pausing its reader now and then for a few milliseconds (a busy disk or client). */
function slowReader(ch: MuxChannel, rand: (n: number) => number, onData: () => void): Buffer[] {
  const parts: Buffer[] = [];
  ch.on('data', (d: Buffer) => {
    parts.push(d);
    if (rand(4) === 0) {
      ch.pause();
      setTimeout(() => ch.resume(), rand(4));
    }
    onData();
  });
  return parts;
}

const bytes = (parts: Buffer[]) => parts.reduce((n, p) => n + p.length, 0);

/**
 * Each guest client uploads a request stamped with its index (its first 4 bytes) while the host streams its
 * download back at the same time; the host ends once it has the whole request, the guest once it has the whole
 * download. Readers on both sides pause at random, writers honour backpressure.
 */
async function exchange(clients: Client[], bounds: { maxChannelBuffer: number; maxSessionBuffer: number }, seed: number) {
  const rand = random(seed);
  const [hostSide, guestSide] = choppedPair(seed);
  const options = { ...bounds, stallTimeout: 0 }; // readers always come back: everything must get through
  const host = new MuxSession(hostSide, { ...options, role: 'host' });
  const guest = new MuxSession(guestSide, { ...options, role: 'guest' });
  const requests = clients.map((c, i) => {
    const b = pattern(2 * i + 1, 4 + c.up);
    b.writeUInt32LE(i, 0);
    return b;
  });
  const downloads = clients.map((c, i) => pattern(2 * i + 2, c.down));
  const received = clients.map(() => null as Buffer[] | null);
  const served: Promise<void>[] = [];
  // What the channels of each side hold unread, summed at every delivery: a measure of the bound that does not
  // rely on the session's own accounting.
  const opened = { host: [] as MuxChannel[], guest: [] as MuxChannel[] };
  const peak = { host: 0, guest: 0 };
  const sample = (side: 'host' | 'guest') => {
    peak[side] = Math.max(peak[side], opened[side].reduce((n, ch) => n + ch.readableLength, 0));
  };

  host.on('channel', (ch: MuxChannel) => {
    ch.on('error', () => {});
    opened.host.push(ch);
    let index = -1;
    let writing: Promise<void> | undefined;
    served.push(
      new Promise<void>((resolve, reject) => {
        const parts = slowReader(ch, rand, () => {
          sample('host');
          if (index < 0 && bytes(parts) >= 4) {
            index = Buffer.concat(parts).readUInt32LE(0);
            if (index >= clients.length) return reject(new Error(`a request starts with ${index}, not a client index`));
            received[index] = parts;
            writing = writeAll(ch, downloads[index] as Buffer, rand);
          }
          if (index >= 0 && bytes(parts) === (requests[index] as Buffer).length) {
            // The whole request is in: end the answer (a size-0 frame) once all of it is written.
            (writing as Promise<void>).then(() => ch.end(resolve), reject);
          }
        });
      }),
    );
  });

  const fetched = await within(
    30_000,
    'every exchange',
    Promise.all(
      clients.map(async (c, i) => {
        const ch = guest.open();
        opened.guest.push(ch);
        let hostClosed = false;
        let finish = () => {};
        const done = new Promise<void>((resolve, reject) => {
          finish = resolve;
          ch.on('error', reject);
        });
        const check = () => {
          sample('guest');
          if (hostClosed && bytes(parts) === c.down) finish();
        };
        const parts = slowReader(ch, rand, check);
        ch.on('hostclose', () => {
          hostClosed = true;
          check();
        });
        await writeAll(ch, requests[i] as Buffer, rand);
        await done;
        ch.end();
        return Buffer.concat(parts);
      }),
    ),
  );
  await within(10_000, 'every host answer', Promise.all(served));
  fetched.forEach((got, i) => assert.ok(got.equals(downloads[i] as Buffer), `client ${i}: download byte-exact (${got.length} of ${clients[i]?.down})`));
  received.forEach((parts, i) => assert.ok(parts && Buffer.concat(parts).equals(requests[i] as Buffer), `client ${i}: request byte-exact`));
  const limit = bounds.maxSessionBuffer + MAX_PIECE + 10;
  for (const [side, s] of [['host', host], ['guest', guest]] as const) {
    assert.equal(s.stats.overflows + s.stats.stalls, 0, `${side}: no channel was cut`);
    assert.ok(s.stats.peakBufferedBytes <= limit, `${side}: peak ${s.stats.peakBufferedBytes} within the session bound, as the session counts`);
    assert.ok(peak[side] <= limit, `${side}: peak ${peak[side]} within the session bound, as the channels hold it`);
  }
  await until(() => host.channelCount === 0 && guest.channelCount === 0, 'every id freed');
  await guest.close();
  await host.close();
}

test('property: with readers that pause at random and bounds down to one byte, every byte gets through both ways, once, in order, within the bounds', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ up: fc.integer({ min: 0, max: 300_000 }), down: fc.integer({ min: 0, max: 300_000 }) }), { minLength: 1, maxLength: 5 }),
      fc.record({ maxChannelBuffer: fc.constantFrom(1, 1024, 65_535, 200_000), maxSessionBuffer: fc.constantFrom(1, 4096, 100_000, 1_000_000) }),
      fc.integer({ min: 1, max: 2 ** 31 }),
      exchange,
    ),
    { numRuns: 30, endOnFailure: true }, // a failure can be a hang: report it, do not shrink it
  );
});
