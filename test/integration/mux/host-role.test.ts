import test from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, MuxSession, type MuxChannel } from '../../../mux/index.js';
import { duplexPair } from '../../helpers/duplex-pair.js';
import type { Logger } from '../../../src/log.js';
import { RawPeer, readAll, until, waitFor } from './harness.js';

// The test plays spice-webdavd: it writes frames with the ids spice-webdavd uses (sign-extended pointers).
const ID = BigInt.asIntN(64, 0xffffffff8a3c1f20n);

function hostWithRawGuest(options: { maxChannels?: number } = {}): {
  host: MuxSession;
  guest: RawPeer;
  opened: MuxChannel[];
} {
  const [hostSide, guestSide] = duplexPair();
  const host = new MuxSession(hostSide, { role: 'host', ...options });
  const opened: MuxChannel[] = [];
  host.on('channel', (ch) => {
    ch.on('error', () => {});
    opened.push(ch);
  });
  return { host, guest: new RawPeer(guestSide), opened };
}

async function text(ch: MuxChannel, bytes: number): Promise<string> {
  let s = '';
  ch.on('data', (d: Buffer) => (s += d.toString()));
  await until(() => s.length >= bytes, `${bytes} bytes on channel ${ch.id}`);
  return s;
}

test('host role: data on an unknown (negative) id opens a channel that carries the bytes', async () => {
  const { host, guest, opened } = hostWithRawGuest();
  guest.send(ID, 'GET / HTTP/1.1\r\n');
  await until(() => opened.length === 1, 'channel');
  const ch = opened[0] as MuxChannel;
  assert.equal(ch.id, ID);
  assert.equal(await text(ch, 16), 'GET / HTTP/1.1\r\n');
  ch.write('HTTP/1.1 200 OK\r\n');
  await until(() => guest.dataFor(ID).length === 17, 'reply frames');
  assert.equal(guest.dataFor(ID), 'HTTP/1.1 200 OK\r\n');
  assert.equal(host.channelCount, 1);
  await host.destroy();
});

test('host role, guest-initiated close: the id is free at once, EOF for the reader, later writes dropped, reuse is a new channel', async () => {
  const { host, guest, opened } = hostWithRawGuest();
  guest.send(ID, 'first');
  await until(() => opened.length === 1, 'first channel');
  const first = opened[0] as MuxChannel;
  const firstBody = readAll(first);
  guest.close(ID);
  assert.equal((await firstBody).toString(), 'first', 'reader sees the data, then EOF');
  assert.equal(host.channelCount, 0, 'id freed by the guest size-0');

  // spice-webdavd keeps the TCP connection and reuses the id: the next data is a new server connection.
  guest.send(ID, 'second');
  await until(() => opened.length === 2, 'second channel');
  const second = opened[1] as MuxChannel;
  assert.notEqual(second, first);
  assert.equal(second.id, ID);
  assert.equal(await text(second, 6), 'second');

  // What the server still writes to the old channel goes nowhere; its end() sends no size-0 for the reused id.
  const written = new Promise<void>((resolve, reject) => first.write('late reply', (err) => (err ? reject(err) : resolve())));
  await written;
  first.end();
  await waitFor(first, 'close');
  second.write('fresh reply');
  await until(() => guest.dataFor(ID) === 'fresh reply', 'the new channel answers');
  assert.equal(guest.closesFor(ID), 0, 'no size-0 from the old channel');
  assert.equal(host.channelCount, 1);
  await host.destroy();
});

test('host role, host-initiated close: end() flushes, sends size-0 and frees the id; later data is a new channel', async () => {
  const { host, guest, opened } = hostWithRawGuest();
  guest.send(ID, 'request one');
  await until(() => opened.length === 1, 'channel');
  const first = opened[0] as MuxChannel;
  const firstEnded = readAll(first);
  first.end('response one');
  await until(() => guest.closesFor(ID) === 1, 'size-0 frame');
  const frames = guest.frames.filter((f) => f.id === ID);
  assert.equal(Buffer.concat(frames.map((f) => f.payload)).toString(), 'response one');
  assert.equal(frames.at(-1)?.payload.length, 0, 'the size-0 frame comes after the data');
  assert.equal(host.channelCount, 0, 'id freed after our size-0');
  assert.equal((await firstEnded).toString(), 'request one', 'the old channel is over in both directions');

  // spice-webdavd ignores our size-0 and sends the next request on the same id (protocol.md §a.4).
  guest.send(ID, 'request two');
  await until(() => opened.length === 2, 'second channel');
  assert.equal(await text(opened[1] as MuxChannel, 11), 'request two');
  await host.destroy();
});

test('host role: size-0 for an unknown id is ignored', async () => {
  const { host, guest, opened } = hostWithRawGuest();
  guest.close(42n);
  guest.send(7n, 'x');
  await until(() => opened.length === 1, 'channel');
  assert.equal(opened[0]?.id, 7n);
  assert.equal(host.stats.framesIn, 2);
  assert.equal(guest.frames.length, 0, 'nothing answered');
  await host.destroy();
});

test('host role: a destroyed channel tells the guest (size-0), drops data until then, and frees the id', async () => {
  const { host, guest, opened } = hostWithRawGuest();
  guest.send(5n, 'a');
  await until(() => opened.length === 1, 'channel');
  const ch = opened[0] as MuxChannel;
  ch.destroy();
  await until(() => guest.closesFor(5n) === 1, 'size-0 for the destroyed channel');
  assert.equal(host.channelCount, 0);
  guest.send(5n, 'b');
  await until(() => opened.length === 2, 'reused id opens a new channel');
  await host.destroy();
});

test("host role: at maxChannels new ids are refused (frames dropped, counted); without a 'channel' listener, refused with size-0", async () => {
  const { host, guest, opened } = hostWithRawGuest({ maxChannels: 2 });
  guest.send(1n, 'a');
  guest.send(2n, 'b');
  guest.send(3n, 'c');
  guest.send(1n, 'more');
  await until(() => host.stats.framesIn === 4, 'frames in');
  assert.deepEqual(
    opened.map((c) => c.id),
    [1n, 2n],
  );
  assert.equal(host.stats.channelsRefused, 1);
  assert.equal(host.stats.framesDropped, 1);
  await host.destroy();

  const [hostSide, guestSide] = duplexPair();
  const lonely = new MuxSession(hostSide, { role: 'host' });
  const raw = new RawPeer(guestSide);
  raw.send(9n, 'anyone?');
  await until(() => raw.closesFor(9n) === 1, 'refusal');
  assert.equal(lonely.channelCount, 0);
  await lonely.destroy();
});

test('host role: the rest of a refused frame, arriving in a later chunk, never opens a connection', async () => {
  const [hostSide, guestSide] = duplexPair();
  const host = new MuxSession(hostSide, { role: 'host', maxChannels: 1 });
  const opened: MuxChannel[] = [];
  host.on('channel', (ch) => opened.push(ch.on('error', () => {})));
  const raw = new RawPeer(guestSide);
  raw.send(1n, 'a');
  await until(() => opened.length === 1, 'first channel');
  // A frame for a new id cut in two transport chunks: its start is refused (maxChannels), its end must not be
  // taken for a new connection once there is room.
  const frame = Buffer.concat(encodeFrame(2n, Buffer.from('0123456789')));
  guestSide.write(frame.subarray(0, 14));
  await RawPeer.settle();
  opened[0]?.end();
  await until(() => host.channelCount === 0, 'room again');
  guestSide.write(frame.subarray(14));
  raw.send(3n, 'c');
  await until(() => opened.length === 2, 'a later, whole frame does open');
  assert.deepEqual(
    opened.map((c) => c.id),
    [1n, 3n],
  );
  assert.equal(host.stats.channelsRefused, 1);
  await host.destroy();
});

test('debug log lines per channel open and close carry the id', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const recorder: Logger = {
    error() {},
    warn() {},
    info() {},
    debug: (obj, msg) => void lines.push({ ...obj, msg }),
    child: () => recorder,
  };
  const [hostSide, guestSide] = duplexPair();
  const host = new MuxSession(hostSide, { role: 'host', log: recorder });
  host.on('channel', (ch) => ch.resume());
  const raw = new RawPeer(guestSide);
  raw.send(ID, 'x');
  raw.close(ID);
  await until(() => lines.some((l) => l.msg === 'mux channel closed'), 'close line');
  const about = lines.filter((l) => l.id === ID.toString()).map((l) => l.msg);
  assert.deepEqual(about, ['mux channel opened', 'mux channel closed']);
  await host.destroy();
});

test('host role: open() is refused with MUX_ERR_ROLE', async () => {
  const { host } = hostWithRawGuest();
  assert.throws(() => host.open(), { code: 'MUX_ERR_ROLE' });
  await host.destroy();
});
