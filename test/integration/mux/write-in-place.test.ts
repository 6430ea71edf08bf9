import test from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { FRAME_HEADER_SIZE, MuxSession, type MuxChannel } from '../../../mux/index.js';
import { hasCode } from '../../../src/errors.js';
import { duplexPair } from '../../helpers/duplex-pair.js';
import { RawPeer, pattern, until } from './harness.js';

// MuxChannel.writeInPlace: a frame built in the caller's memory, header in the 10 bytes before the payload.

/** `payload` in a buffer of its own with FRAME_HEADER_SIZE spare bytes in front (filled with 0xee). */
function withHeadroom(payload: Buffer): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_SIZE + payload.length, 0xee);
  payload.copy(b, FRAME_HEADER_SIZE);
  return b.subarray(FRAME_HEADER_SIZE);
}

/** A transport that records every chunk written to it and completes each write only when told to. */
class HeldTransport extends Duplex {
  readonly chunks: Buffer[] = [];
  readonly #held: Array<() => void> = [];
  hold = false;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk);
    if (this.hold) this.#held.push(cb);
    else cb();
  }

  override _read(): void {}

  release(): void {
    this.hold = false;
    for (const cb of this.#held.splice(0)) cb();
  }
}

test('writeInPlace: header written before the payload, one transport write, the same memory (no copy)', async () => {
  const transport = new HeldTransport();
  const guest = new MuxSession(transport, { role: 'guest' });
  const ch = guest.open();
  const payload = withHeadroom(pattern(7, 5000));
  let done = false;
  ch.writeInPlace(payload, (err) => {
    assert.equal(err ?? null, null);
    done = true;
  });
  await until(() => done, 'done');
  assert.equal(transport.chunks.length, 1, 'header and payload leave as one write');
  const wire = transport.chunks[0] as Buffer;
  assert.equal(wire.buffer, payload.buffer, 'the frame is the caller memory itself');
  assert.equal(wire.byteOffset, payload.byteOffset - FRAME_HEADER_SIZE);
  assert.equal(wire.readBigInt64LE(0), ch.id);
  assert.equal(wire.readUInt16LE(8), 5000);
  assert.ok(wire.subarray(FRAME_HEADER_SIZE).equals(pattern(7, 5000)));
  assert.equal(guest.stats.bytesOut, 5000, 'payload bytes counted, headers not');
  await guest.destroy();
});

test('writeInPlace: done only once the transport has written the frame, so the memory is not reused early', async () => {
  const transport = new HeldTransport();
  transport.hold = true;
  const guest = new MuxSession(transport, { role: 'guest' });
  const ch = guest.open();
  let done = 0;
  for (let i = 0; i < 3; i++) ch.writeInPlace(withHeadroom(pattern(i, 100)), () => done++);
  await until(() => transport.chunks.length >= 1, 'first frame handed to the transport');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, 0, 'nothing written yet, nothing released');
  transport.release();
  await until(() => done === 3, 'all three released');
  await guest.destroy();
});

test('writeInPlace: frames arrive byte-exact and in order, end() queues the size-0 frame behind them', async () => {
  const [hostSide, guestSide] = duplexPair();
  const host = new RawPeer(hostSide);
  const guest = new MuxSession(guestSide, { role: 'guest' });
  const ch = guest.open();
  const parts = [pattern(1, 65535), pattern(2, 1), pattern(3, 30_000)];
  for (const p of parts) ch.writeInPlace(withHeadroom(p), () => {});
  ch.end();
  await until(() => host.closesFor(ch.id) === 1, 'size-0 frame');
  const frames = host.frames.filter((f) => f.id === ch.id);
  assert.deepEqual(frames.map((f) => f.payload.length), [65535, 1, 30_000, 0], 'one frame each, then the close');
  assert.ok(Buffer.concat(frames.map((f) => f.payload)).equals(Buffer.concat(parts)));
  await guest.destroy();
});

test('writeInPlace: refuses empty, over-long or headroom-less payloads; a dead channel releases at once', async () => {
  const [, guestSide] = duplexPair();
  const guest = new MuxSession(guestSide, { role: 'guest' });
  const ch: MuxChannel = guest.open();
  const bad = (f: () => void): void => assert.throws(f, (e) => hasCode(e, 'MUX_ERR_BAD_PAYLOAD'));
  bad(() => ch.writeInPlace(withHeadroom(Buffer.alloc(0)), () => {}));
  bad(() => ch.writeInPlace(withHeadroom(Buffer.alloc(65536)), () => {}));
  bad(() => ch.writeInPlace(Buffer.alloc(100), () => {}));
  bad(() => ch.writeInPlace(Buffer.alloc(100).subarray(FRAME_HEADER_SIZE - 1), () => {}));

  ch.destroy();
  const err = await new Promise<Error | null | undefined>((resolve) => ch.writeInPlace(withHeadroom(Buffer.from('x')), resolve));
  assert.ok(hasCode(err, 'MUX_ERR_DESTROYED'), `destroyed channel: ${String(err)}`);
  await guest.destroy();
});

test('writeInPlace: frames still queued when the session dies are released with an error', async () => {
  const transport = new HeldTransport();
  transport.hold = true;
  const guest = new MuxSession(transport, { role: 'guest', channelHighWaterMark: 1024 });
  const ch = guest.open();
  ch.on('error', () => {}); // destroyed with the session's error
  const results: Array<Error | null | undefined> = [];
  for (let i = 0; i < 20; i++) ch.writeInPlace(withHeadroom(pattern(i, 4096)), (err) => results.push(err));
  await guest.destroy(new Error('gone'));
  transport.release();
  await until(() => results.length === 20, 'every frame released');
  assert.ok(results.some((e) => e instanceof Error), 'the ones never written report an error');
});
