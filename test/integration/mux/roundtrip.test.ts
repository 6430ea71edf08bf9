import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MuxSession, type MuxChannel } from '../../../mux/index.js';
import { choppedPair, pattern, readAll, sessionPair, until, waitFor, within } from './harness.js';

/**
 * The host echoes every channel; each guest client writes its chunks (interleaved with the other clients'
 * writes), waits for the whole echo, then ends. Every client must get back exactly its own bytes.
 */
async function echoRoundTrip(host: MuxSession, guest: MuxSession, clients: number[][]): Promise<void> {
  host.on('channel', (ch) => {
    ch.on('error', () => {});
    ch.pipe(ch);
  });
  const channels = clients.map(() => guest.open());
  const sent = clients.map((sizes, i) => pattern(i + 1, sizes.reduce((a, b) => a + b, 0)));
  const received = channels.map(() => [] as Buffer[]);
  const done = channels.map(
    (ch, i) =>
      new Promise<void>((resolve, reject) => {
        let got = 0;
        ch.on('error', reject);
        ch.on('data', (d: Buffer) => {
          received[i]?.push(d);
          got += d.length;
          if (got >= (sent[i]?.length ?? 0)) resolve();
        });
        if (sent[i]?.length === 0) resolve();
      }),
  );
  // Interleave: one write per client in turn, until every client has written all its chunks.
  const offsets = clients.map(() => 0);
  for (let round = 0; clients.some((sizes) => round < sizes.length); round++) {
    clients.forEach((sizes, i) => {
      const size = sizes[round];
      if (size === undefined) return;
      const off = offsets[i] ?? 0;
      channels[i]?.write((sent[i] as Buffer).subarray(off, off + size));
      offsets[i] = off + size;
    });
  }
  await within(20_000, 'every echo', Promise.all(done));
  channels.forEach((_, i) => assert.deepEqual(Buffer.concat(received[i] ?? []), sent[i], `client ${i} got its own bytes back`));
  for (const ch of channels) ch.end();
  await until(() => host.channelCount === 0 && guest.channelCount === 0, 'all ids freed');
  await Promise.all([guest.close(), waitFor(host, 'close')]);
}

test('8 interleaved clients round-trip byte-exact through host and guest sessions', async () => {
  const { host, guest } = sessionPair();
  const clients = Array.from({ length: 8 }, (_, i) => [1, 100, 65535, 65536, 200_000, 7, 300_000 + i]);
  await echoRoundTrip(host, guest, clients);
});

test('property: N interleaved clients round-trip byte-exact over a transport that splits frames anywhere', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(fc.integer({ min: 1, max: 150_000 }), { minLength: 0, maxLength: 6 }), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: 2 ** 31 }),
      async (clients, seed) => {
        const [hostSide, guestSide] = choppedPair(seed);
        const host = new MuxSession(hostSide, { role: 'host' });
        const guest = new MuxSession(guestSide, { role: 'guest' });
        await echoRoundTrip(host, guest, clients);
      },
    ),
    { numRuns: 25 },
  );
});

test('a request/response exchange: the host answers and ends, the guest reads the answer', async () => {
  const { host, guest } = sessionPair();
  host.on('channel', (ch: MuxChannel) => {
    ch.once('data', (d: Buffer) => {
      ch.end(`answer to ${d.toString()}`);
    });
  });
  const ch = guest.open();
  ch.write('question');
  const answer = new Promise<string>((resolve) => {
    let text = '';
    ch.on('data', (d: Buffer) => (text += d.toString()));
    ch.on('hostclose', () => resolve(text));
  });
  assert.equal(await within(5000, 'answer', answer), 'answer to question');
  ch.end();
  assert.equal(await readAll(ch).then((b) => b.length), 0, 'nothing after the answer');
  await guest.close();
});
