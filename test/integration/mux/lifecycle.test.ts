import test from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { encodeFrame, MuxSession, type MuxChannel } from '../../../mux/index.js';
import { hasCode } from '../../../src/errors.js';
import { duplexPair } from '../../helpers/duplex-pair.js';
import { pattern, RawPeer, readAll, sessionPair, until, waitFor, within } from './harness.js';

/** Resolves with the error a channel is destroyed with (or null if it closes cleanly). */
function outcome(ch: MuxChannel): Promise<Error | null> {
  return within(
    5000,
    `channel ${ch.id} to close`,
    new Promise((resolve) => {
      let error: Error | null = null;
      ch.on('error', (err) => (error = err));
      ch.on('close', () => resolve(error));
    }),
  );
}

/**
 * An endless source of 64 KiB chunks: bulk traffic that is still flowing when the transport dies. It yields to
 * the event loop per chunk; an in-memory chain that never waits for I/O would otherwise run on process.nextTick
 * forever and starve the test's timers.
 */
function endless(): Readable {
  const chunk = pattern(3, 65536);
  return new Readable({
    read() {
      setImmediate(() => this.push(chunk));
    },
  });
}

test('transport loss mid-transfer destroys every channel on both sides with MUX_ERR_TRANSPORT_CLOSED', async () => {
  const { host, guest, hostSide } = sessionPair();
  const hostChannels: MuxChannel[] = [];
  host.on('channel', (ch) => {
    hostChannels.push(ch);
    endless().pipe(ch); // downloads in progress
    ch.resume();
  });
  const guestChannels = [guest.open(), guest.open(), guest.open()];
  for (const ch of guestChannels) {
    endless().pipe(ch); // uploads in progress
    ch.resume();
  }
  await until(() => hostChannels.length === 3 && host.stats.bytesIn > 4 << 20 && guest.stats.bytesIn > 4 << 20, 'traffic');
  const results = [...hostChannels, ...guestChannels].map(outcome);
  const hostClosed = waitFor<[Error?]>(host, 'close');
  const guestClosed = waitFor<[Error?]>(guest, 'close');

  hostSide.destroy(); // the SPICE connection drops

  for (const err of await Promise.all(results)) {
    assert.ok(hasCode(err, 'MUX_ERR_TRANSPORT_CLOSED'), `channel error: ${String(err)}`);
  }
  const [[hostErr], [guestErr]] = await Promise.all([hostClosed, guestClosed]);
  assert.ok(hasCode(hostErr, 'MUX_ERR_TRANSPORT_CLOSED'));
  assert.ok(hasCode(guestErr, 'MUX_ERR_TRANSPORT_CLOSED'));
  assert.equal(host.channelCount, 0);
  assert.equal(guest.channelCount, 0);
});

test('a transport that ends mid-frame: MUX_ERR_TRANSPORT_CLOSED with a MUX_ERR_TRUNCATED cause', async () => {
  const [hostSide, guestSide] = duplexPair();
  const host = new MuxSession(hostSide, { role: 'host' });
  const opened: MuxChannel[] = [];
  host.on('channel', (ch) => opened.push(ch));
  const [header, payload] = encodeFrame(1n, Buffer.from('hello'));
  guestSide.write(header);
  guestSide.write(payload);
  guestSide.write((encodeFrame(1n, Buffer.from('cut short'))[0] as Buffer).subarray(0, 9));
  await until(() => opened.length === 1, 'channel');
  const result = outcome(opened[0] as MuxChannel);
  const closed = waitFor<[Error?]>(host, 'close');
  guestSide.end();
  const err = await result;
  assert.ok(hasCode(err, 'MUX_ERR_TRANSPORT_CLOSED'));
  assert.ok(hasCode(err?.cause, 'MUX_ERR_TRUNCATED'), `cause: ${String(err?.cause)}`);
  const [closeErr] = await closed;
  assert.equal(closeErr, err, "'close' carries the same error");
});

test("a transport that ends at a frame boundary still ends the session with MUX_ERR_TRANSPORT_CLOSED, 'close' once", async () => {
  const [hostSide, guestSide] = duplexPair();
  const host = new MuxSession(hostSide, { role: 'host' });
  let closes = 0;
  host.on('close', () => closes++);
  guestSide.end();
  const [err] = await waitFor<[Error?]>(host, 'close');
  assert.ok(hasCode(err, 'MUX_ERR_TRANSPORT_CLOSED'));
  assert.equal(err?.cause, undefined);
  await host.close();
  await host.destroy();
  assert.equal(closes, 1);
});

test('close() drains: written data and size-0 frames reach the peer before the transport ends', async () => {
  const { host, guest } = sessionPair();
  const bodies: Array<Promise<Buffer>> = [];
  host.on('channel', (ch) => bodies.push(readAll(ch)));
  const sent = [pattern(1, 3 << 20), pattern(2, 100), pattern(3, 70_000)];
  for (const data of sent) guest.open().write(data);
  let closes = 0;
  guest.on('close', () => closes++);
  const hostClosed = waitFor<[Error?]>(host, 'close');
  const first = guest.close();
  assert.equal(guest.close(), first, 'the same promise');
  assert.throws(() => guest.open(), { code: 'MUX_ERR_DESTROYED' });
  await within(5000, 'guest close', first);
  await until(() => bodies.length === 3, 'three channels');
  const got = await Promise.all(bodies);
  assert.deepEqual(got, sent);
  const [hostErr] = await hostClosed;
  assert.ok(hasCode(hostErr, 'MUX_ERR_TRANSPORT_CLOSED'), 'the host sees the guest leave');
  await guest.destroy();
  assert.equal(closes, 1);
});

test('destroy(err) aborts now: channels get the error, queued writes fail, idempotent, close once; destroy() is quiet', async () => {
  const [, guestSide] = duplexPair(); // nobody reads the other end: frames queue up behind the transport
  const guest = new MuxSession(guestSide, { role: 'guest' });
  const ch = guest.open();
  const result = outcome(ch);
  const writeErrors: Error[] = [];
  for (let i = 0; i < 64; i++) ch.write(pattern(i, 65536), (err) => err && writeErrors.push(err));
  let closes = 0;
  guest.on('close', () => closes++);
  const cause = new Error('user abort');
  const first = guest.destroy(cause);
  const second = guest.destroy(new Error('again'));
  await within(5000, 'destroy', Promise.all([first, second, guest.close()]));
  assert.equal(await result, cause);
  assert.ok(writeErrors.includes(cause), 'the write held by the mux fails with the cause, not silently');
  assert.equal(closes, 1);

  // Without an error, channels close the way stream.destroy() closes a stream: no 'error' event; a write still
  // waiting for the transport fails with MUX_ERR_DESTROYED.
  const other = new MuxSession(duplexPair()[1], { role: 'guest' });
  const quiet = other.open();
  const quietOutcome = outcome(quiet);
  let waiting: Error | null | undefined;
  quiet.write(pattern(1, 200_000), (err) => (waiting = err));
  await RawPeer.settle();
  await other.destroy();
  assert.equal(await quietOutcome, null, 'closed without an error');
  assert.ok(hasCode(waiting, 'MUX_ERR_DESTROYED'), String(waiting));
});

test("a throwing 'channel' listener destroys the session instead of crashing the process", async () => {
  const [hostSide, guestSide] = duplexPair();
  const host = new MuxSession(hostSide, { role: 'host' });
  const bug = new Error('listener bug');
  host.on('channel', () => {
    throw bug;
  });
  guestSide.write(Buffer.concat(encodeFrame(1n, Buffer.from('x'))));
  const [err] = await waitFor<[Error?]>(host, 'close');
  assert.equal(err, bug);
});
