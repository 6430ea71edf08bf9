import test from 'node:test';
import assert from 'node:assert/strict';
import { MAX_CLIENT_ID, MIN_CLIENT_ID, MuxSession, type MuxChannel } from '../../../mux/index.js';
import { nextFreeId } from '../../../mux/session.js';
import { duplexPair } from '../../helpers/duplex-pair.js';
import { RawPeer, readAll, until, waitFor } from './harness.js';

function guestWithRawHost(options: { maxChannels?: number } = {}): { guest: MuxSession; host: RawPeer } {
  const [hostSide, guestSide] = duplexPair();
  return { guest: new MuxSession(guestSide, { role: 'guest', ...options }), host: new RawPeer(hostSide) };
}

function collect(ch: MuxChannel): () => string {
  let s = '';
  ch.on('data', (d: Buffer) => (s += d.toString()));
  return () => s;
}

test('guest role: open() hands out distinct ids; the host learns an id from its first data frame', async () => {
  const { guest, host } = guestWithRawHost();
  const a = guest.open();
  const b = guest.open();
  assert.notEqual(a.id, b.id);
  assert.equal(guest.channelCount, 2);
  b.write('from b');
  a.write('from a');
  await until(() => host.frames.length === 2, 'two frames');
  assert.equal(host.dataFor(b.id), 'from b');
  assert.equal(host.dataFor(a.id), 'from a');
  await guest.destroy();
});

test('guest role: the id counter wraps int64 and skips live ids', () => {
  const live = new Set([MAX_CLIENT_ID, MIN_CLIENT_ID, 5n]);
  assert.equal(nextFreeId(MAX_CLIENT_ID, (id) => live.has(id)), MIN_CLIENT_ID + 1n);
  assert.equal(nextFreeId(4n, (id) => live.has(id)), 4n);
  assert.equal(nextFreeId(5n, (id) => live.has(id)), 6n);
});

test('guest role: a host size-0 does not end the channel; it emits hostclose and the connection carries on', async () => {
  const { guest, host } = guestWithRawHost();
  const ch = guest.open();
  const text = collect(ch);
  let ended = false;
  ch.on('end', () => (ended = true));
  ch.write('GET /a HTTP/1.1\r\n\r\n');
  await until(() => host.frames.length === 1, 'request');
  host.send(ch.id, 'HTTP/1.1 200 OK\r\n\r\n');
  const hostclose = waitFor(ch, 'hostclose');
  host.close(ch.id);
  await hostclose;
  assert.equal(text(), 'HTTP/1.1 200 OK\r\n\r\n');
  assert.equal(ended, false, 'readable side still open');
  assert.equal(guest.channelCount, 1, 'id still live');

  // Keep-alive client: the next request goes out on the same id, and the host's answer (a new connection on
  // its side) comes back to the same channel.
  ch.write('GET /b HTTP/1.1\r\n\r\n');
  await until(() => host.dataFor(ch.id).endsWith('GET /b HTTP/1.1\r\n\r\n'), 'second request on the same id');
  host.send(ch.id, 'second answer');
  await until(() => text().endsWith('second answer'), 'second answer');
  assert.equal(host.closesFor(ch.id), 0, 'the guest sent no size-0');
  await guest.destroy();
});

test('guest role: channel.end() sends size-0 and frees the id; later host frames for it are dropped', async () => {
  const { guest, host } = guestWithRawHost();
  const ch = guest.open();
  ch.write('bye');
  const body = readAll(ch);
  ch.end();
  await until(() => host.closesFor(ch.id) === 1, 'size-0');
  assert.equal(guest.channelCount, 0);
  assert.equal((await body).length, 0, 'EOF for the reader: nothing can arrive any more');
  host.send(ch.id, 'too late');
  await until(() => guest.stats.framesIn === 1, 'frame in');
  assert.equal(guest.stats.framesDropped, 1);
  await guest.destroy();
});

test('guest role: frames for unknown ids are dropped and size-0 for them ignored', async () => {
  const { guest, host } = guestWithRawHost();
  const ch = guest.open();
  const text = collect(ch);
  host.send(999n, 'nobody');
  host.close(999n);
  host.send(ch.id, 'mine');
  await until(() => text() === 'mine', 'own data');
  assert.equal(guest.stats.framesDropped, 1);
  assert.equal(guest.stats.framesIn, 3);
  assert.equal(host.frames.length, 0);
  await guest.destroy();
});

test('guest role: open() refuses past maxChannels (MUX_ERR_CHANNEL_LIMIT) and after close (MUX_ERR_DESTROYED)', async () => {
  const { guest } = guestWithRawHost({ maxChannels: 1 });
  guest.open();
  assert.throws(() => guest.open(), { code: 'MUX_ERR_CHANNEL_LIMIT' });
  await guest.destroy();
  assert.throws(() => guest.open(), { code: 'MUX_ERR_DESTROYED' });
});
