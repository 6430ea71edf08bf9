import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { MuxChannel, MuxSession } from '../../../mux/index.js';
import { hasCode } from '../../../src/errors.js';
import { pattern, sessionPair, until, within } from './harness.js';

const MiB = 1 << 20;
const CHUNK = 65536;

/**
 * `total` bytes in 64 KiB chunks, each stamped with its index (reordering changes the hash). It yields to the
 * event loop between chunks, as real I/O does; an in-memory chain that never does would starve the timers.
 */
function source(total: number, seed: number): { stream: Readable; sha256: string } {
  const bases = [0, 1, 2, 3, 4, 5, 6].map((i) => pattern(seed * 10 + i, CHUNK));
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  for (let i = 0; i * CHUNK < total; i++) {
    const c = Buffer.from((bases[i % bases.length] as Buffer).subarray(0, Math.min(CHUNK, total - i * CHUNK)));
    c.writeUInt32LE(i, 0);
    hash.update(c);
    chunks.push(c);
  }
  let next = 0;
  const stream = new Readable({
    read() {
      setImmediate(() => this.push(next < chunks.length ? chunks[next++] : null));
    },
  });
  return { stream, sha256: hash.digest('hex') };
}

/**
 * Hashes and counts what `ch` delivers until its end (guest role: until the host's size-0, `'hostclose'`);
 * `onData` runs after each chunk.
 */
function sink(ch: MuxChannel, onData: () => void = () => {}): { bytes: () => number; done: Promise<string> } {
  const hash = createHash('sha256');
  let bytes = 0;
  const done = new Promise<string>((resolve, reject) => {
    ch.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
      onData();
    });
    const finish = (): void => resolve(hash.digest('hex'));
    ch.once('end', finish);
    ch.once('hostclose', finish);
    ch.on('error', reject);
  });
  return { bytes: () => bytes, done };
}

/** Host-role channels in arrival order, each with a no-op error listener (errors are asserted explicitly). */
function hostChannels(host: MuxSession): MuxChannel[] {
  const list: MuxChannel[] = [];
  host.on('channel', (ch) => list.push(ch.on('error', () => {})));
  return list;
}

for (const direction of ['guest→host', 'host→guest'] as const) {
  test(`isolation (${direction}): a paused reader does not stall a 64 MiB transfer; buffered memory stays within the bound`, async () => {
    const maxChannelBuffer = 4 * MiB;
    const maxSessionBuffer = 8 * MiB;
    const opts = { maxChannelBuffer, maxSessionBuffer };
    const { host, guest } = sessionPair(opts, opts);
    const opened = hostChannels(host);
    const gStalled = guest.open().on('error', () => {});
    const gBulk = guest.open().on('error', () => {});
    gStalled.write('stalled');
    gBulk.write('bulk');
    await until(() => opened.length === 2, 'two host channels');
    const [hStalled, hBulk] = opened as [MuxChannel, MuxChannel];
    const [recvSession, stalledReader, stalledWriter, bulkReader, bulkWriter] =
      direction === 'guest→host' ? [host, hStalled, gStalled, hBulk, gBulk] : [guest, gStalled, hStalled, gBulk, hBulk];
    // Drain the greeting on the bulk side, then hold 1 MiB unread on the stalled side (a server busy elsewhere).
    if (direction === 'guest→host') await until(() => hBulk.read() !== null, 'greeting');
    stalledWriter.write(pattern(9, MiB));
    await until(() => stalledReader.readableLength >= MiB, 'stalled backlog');

    let peak = 0;
    const bulk = source(64 * MiB, 1);
    const got = sink(bulkReader, () => {
      // Measured from the channels themselves, independently of the session's own accounting.
      peak = Math.max(peak, stalledReader.readableLength + bulkReader.readableLength);
    });
    bulk.stream.pipe(bulkWriter);
    assert.equal(await within(60_000, '64 MiB through', got.done), bulk.sha256, 'byte-exact');
    assert.equal(got.bytes(), 64 * MiB);
    assert.equal(stalledReader.destroyed, false, 'the paused channel is intact');
    assert.ok(stalledReader.readableLength >= MiB, 'and still holds its unread data');
    assert.ok(peak <= maxSessionBuffer, `peak ${peak} within maxSessionBuffer`);
    assert.ok(recvSession.stats.peakBufferedBytes <= maxSessionBuffer + CHUNK + 10, 'session bound (+ one chunk)');
    assert.equal(recvSession.stats.overflows, 0);
    await guest.destroy();
  });
}

/**
 * Two guest clients and their host channels, both opened with one byte: the first will stall (its guest side is
 * never read; `stalledError` is its first error), the second carries a bulk download.
 */
async function stalledAndBulk(host: MuxSession, guest: MuxSession) {
  const opened = hostChannels(host);
  const gStalled = guest.open();
  const gBulk = guest.open().on('error', () => {});
  const stalledError = new Promise<Error>((resolve) => gStalled.once('error', resolve));
  gStalled.write('1');
  gBulk.write('2');
  await until(() => opened.length === 2, 'two host channels');
  const [hStalled, hBulk] = opened as [MuxChannel, MuxChannel];
  hStalled.resume();
  hBulk.resume();
  return { gBulk, hStalled, hBulk, stalledError };
}

test("onChannelOverflow 'destroy': overflow destroys only the offender, the other channel completes", async () => {
  const { host, guest } = sessionPair({}, { maxChannelBuffer: MiB, maxSessionBuffer: 8 * MiB, onChannelOverflow: 'destroy' });
  const { gBulk, hStalled, hBulk, stalledError } = await stalledAndBulk(host, guest);

  // The host keeps sending to a guest client that never reads, while another download runs.
  const flood = source(8 * MiB, 2);
  flood.stream.pipe(hStalled);
  const bulk = source(16 * MiB, 3);
  const got = sink(gBulk);
  bulk.stream.pipe(hBulk);

  const err = await within(20_000, 'overflow', stalledError);
  assert.ok(hasCode(err, 'MUX_ERR_CHANNEL_OVERFLOW'), String(err));
  assert.equal(await within(20_000, 'bulk', got.done), bulk.sha256);
  assert.equal(guest.stats.overflows, 1);
  // The guest told the host (size-0): the host channel sees EOF, the rest of the flood is dropped, not queued.
  await until(() => hStalled.readableEnded, 'host side of the offender ended');
  await until(() => flood.stream.readableEnded, 'the flood source ran to its end into the void');
  assert.equal(gBulk.destroyed, false);
  await guest.destroy();
});

test("onChannelOverflow 'pause': the transport stops instead, nothing is lost, and it restarts once the reader catches up", async () => {
  const maxChannelBuffer = MiB;
  const { host, guest } = sessionPair({ maxChannelBuffer, onChannelOverflow: 'pause' });
  const opened = hostChannels(host);
  const gSlow = guest.open().on('error', () => {});
  const slowData = source(4 * MiB, 4);
  slowData.stream.pipe(gSlow);
  await until(() => opened.length === 1, 'host channel');
  const hSlow = opened[0] as MuxChannel;
  await until(() => host.stats.transportPauses > 0, 'transport paused');
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(hSlow.readableLength >= maxChannelBuffer, 'the channel reached its bound');
  assert.ok(hSlow.readableLength <= maxChannelBuffer + CHUNK + 10, 'and stopped there (+ one transport chunk)');
  assert.equal(host.stats.overflows, 0);
  const got = sink(hSlow);
  assert.equal(await within(20_000, 'slow channel', got.done), slowData.sha256, 'all of it, byte-exact');
  await guest.destroy();
});

test('default policy: a stalled reader past its bound is cut after stallTimeout, then the other channel completes', async () => {
  const stallTimeout = 300;
  const { host, guest } = sessionPair({}, { maxChannelBuffer: MiB, maxSessionBuffer: 8 * MiB, stallTimeout });
  const { gBulk, hStalled, hBulk, stalledError } = await stalledAndBulk(host, guest);
  const started = Date.now();
  source(8 * MiB, 2).stream.pipe(hStalled);
  const bulk = source(16 * MiB, 3);
  const got = sink(gBulk);
  bulk.stream.pipe(hBulk);
  const err = await within(20_000, 'stall', stalledError);
  assert.ok(hasCode(err, 'MUX_ERR_CHANNEL_STALLED'), String(err));
  assert.ok(Date.now() - started >= stallTimeout, 'not before stallTimeout');
  assert.equal(await within(20_000, 'bulk', got.done), bulk.sha256);
  assert.equal(guest.stats.stalls, 1);
  assert.equal(guest.stats.overflows, 0);
  await guest.destroy();
});

test('guest role default: a local client that stops reading is cut after about 2 s, not the host-side 15 s', async () => {
  const { host, guest } = sessionPair({}, { maxChannelBuffer: MiB });
  const opened = hostChannels(host);
  const gStalled = guest.open();
  const stalledError = new Promise<Error>((resolve) => gStalled.once('error', resolve));
  gStalled.write('1');
  await until(() => opened.length === 1, 'host channel');
  const hStalled = opened[0] as MuxChannel;
  hStalled.resume();
  source(4 * MiB, 6).stream.pipe(hStalled);
  await until(() => guest.stats.transportPauses > 0, 'guest paused at the bound');
  const paused = Date.now();
  const err = await within(10_000, 'stall', stalledError);
  const waited = Date.now() - paused;
  assert.ok(hasCode(err, 'MUX_ERR_CHANNEL_STALLED'), String(err));
  assert.ok(waited >= 1900 && waited < 6000, `cut after ${waited} ms`);
  await guest.destroy();
});

test('default policy: a reader slower than the link (an upload outrunning its disk) loses nothing, however long it lags', async () => {
  const maxChannelBuffer = MiB;
  const stallTimeout = 200;
  const { host, guest } = sessionPair({ maxChannelBuffer, stallTimeout });
  const opened = hostChannels(host);
  const upload = source(4 * MiB, 5);
  upload.stream.pipe(guest.open().on('error', () => {}));
  await until(() => opened.length === 1, 'host channel');
  const hUpload = opened[0] as MuxChannel;
  await until(() => host.stats.transportPauses > 0, 'transport paused at the bound');
  // Read 128 KiB every 25 ms (~5 MB/s): far behind the in-memory link, for several stallTimeouts in a row.
  const hash = createHash('sha256');
  let bytes = 0;
  const started = Date.now();
  while (bytes < 4 * MiB) {
    await new Promise((r) => setTimeout(r, 25));
    let chunk: Buffer | null;
    let taken = 0;
    while (taken < 128 * 1024 && (chunk = hUpload.read(32 * 1024) as Buffer | null) !== null) {
      hash.update(chunk);
      taken += chunk.length;
    }
    bytes += taken;
    assert.equal(hUpload.destroyed, false, `cut after ${bytes} bytes`);
    assert.ok(Date.now() - started < 20_000, 'bounded');
  }
  assert.ok(Date.now() - started > 2 * stallTimeout, 'the reader lagged for longer than stallTimeout');
  assert.equal(hash.digest('hex'), upload.sha256, 'byte-exact');
  assert.equal(host.stats.stalls, 0);
  await guest.destroy();
});

for (const direction of ['guest→host', 'host→guest'] as const) {
  test(`fairness (${direction}): two bulk channels progress within a small ratio of each other`, async () => {
    const { host, guest } = sessionPair();
    const opened = hostChannels(host);
    const g = [guest.open().on('error', () => {}), guest.open().on('error', () => {})];
    for (const ch of g) ch.write('x');
    await until(() => opened.length === 2, 'two host channels');
    const h = opened as [MuxChannel, MuxChannel];
    if (direction === 'guest→host') await until(() => h.every((ch) => ch.read() !== null), 'greetings');
    const [writers, readers] = direction === 'guest→host' ? [g, h] : [h, g];

    // Large writes (2 MiB = 33 frames each): a per-write FIFO would send one channel's 2 MiB before the other's.
    const total = 16 * MiB;
    const bytes = [0, 0];
    let worst = 1;
    const done = readers.map(
      (ch, i) =>
        new Promise<void>((resolve, reject) => {
          ch.on('error', reject);
          ch.on('data', (d: Buffer) => {
            bytes[i] = (bytes[i] ?? 0) + d.length;
            const hi = Math.max(bytes[0] ?? 0, bytes[1] ?? 0);
            const lo = Math.min(bytes[0] ?? 0, bytes[1] ?? 0);
            // From 4 MiB on, a lead of a few frames (normal jitter) is a few percent, while a per-write FIFO
            // would show a whole 2 MiB write's lead.
            if (hi >= 4 * MiB && hi < total) worst = Math.min(worst, lo / hi);
            if (bytes[i] === total) resolve();
          });
        }),
    );
    const big = pattern(5, 2 * MiB);
    for (const w of writers) for (let i = 0; i < total / big.length; i++) w.write(big);
    await within(30_000, 'both transfers', Promise.all(done));
    assert.deepEqual(bytes, [total, total]);
    assert.ok(worst >= 0.85, `the slower channel always had at least 85% of the faster one's bytes (worst ${worst.toFixed(3)})`);
    await guest.destroy();
  });
}
