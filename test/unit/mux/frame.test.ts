import test from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeClose,
  encodeFrame,
  FRAME_HEADER_SIZE,
  MAX_CLIENT_ID,
  MAX_FRAME_PAYLOAD,
  MIN_CLIENT_ID,
} from '../../../mux/index.js';
import { hasCode } from '../../../src/errors.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const wire = (parts: Buffer[]): string => Buffer.concat(parts).toString('hex');

// spice-webdavd sets client->mux.id = GPOINTER_TO_INT(connection): a pointer truncated to a 32-bit int and
// sign-extended into the int64 field. A heap pointer like 0x55d38a3c1f20 becomes (int)0x8a3c1f20, negative.
const WEBDAVD_ID = BigInt.asIntN(64, 0xffffffff8a3c1f20n);

test('the spice-webdavd id vector: a sign-extended 32-bit pointer value is a negative int64', () => {
  assert.equal(WEBDAVD_ID, BigInt.asIntN(32, 0x8a3c1f20n));
  assert.equal(WEBDAVD_ID, -1975771360n);
});

test('a guest request frame is the exact bytes spice-webdavd writes (id LE, size LE, data)', () => {
  const frames = encodeFrame(WEBDAVD_ID, Buffer.from('GET / HTTP/1.1\r\n'));
  assert.equal(wire(frames), '201f3c8affffffff' + '1000' + Buffer.from('GET / HTTP/1.1\r\n').toString('hex'));
  assert.equal(frames.length, 2);
  assert.equal(frames[0]?.length, FRAME_HEADER_SIZE);
});

test('size-0 close frames: id 1 and the negative spice-webdavd id, as spice-gtk sends them', () => {
  assert.equal(encodeClose(1n).toString('hex'), '0100000000000000' + '0000');
  assert.equal(encodeClose(WEBDAVD_ID).toString('hex'), '201f3c8affffffff' + '0000');
});

test('a 65535-byte payload is one frame with size ffff', () => {
  const payload = Buffer.alloc(MAX_FRAME_PAYLOAD, 0xab);
  const frames = encodeFrame(1n, payload);
  assert.equal(frames.length, 2);
  assert.deepEqual(frames[0], hex('0100000000000000 ffff'));
  assert.equal(frames[1], payload, 'the payload itself, not a copy');
});

test('65536 bytes split into 65535 + 1, each with its own header, without copying', () => {
  const payload = Buffer.alloc(65536);
  payload[65535] = 0x7e;
  const frames = encodeFrame(7n, payload);
  assert.equal(frames.length, 4);
  assert.deepEqual(frames[0], hex('0700000000000000 ffff'));
  assert.equal(frames[1]?.length, 65535);
  assert.deepEqual(frames[2], hex('0700000000000000 0100'));
  assert.deepEqual(frames[3], hex('7e'));
  for (const part of [frames[1], frames[3]]) assert.equal(part?.buffer, payload.buffer, 'a view of the payload');
  assert.equal(frames[3]?.byteOffset, payload.byteOffset + 65535);
});

test('a 1 MiB write becomes ceil(n / 65535) frames whose payloads concatenate to the input', () => {
  const payload = Buffer.alloc(1 << 20, 1);
  const frames = encodeFrame(-5n, payload);
  assert.equal(frames.length, 2 * Math.ceil((1 << 20) / MAX_FRAME_PAYLOAD));
  const payloads = frames.filter((_, i) => i % 2 === 1);
  assert.deepEqual(Buffer.concat(payloads), payload);
  for (const h of frames.filter((_, i) => i % 2 === 0)) assert.equal(h.readBigInt64LE(0), -5n);
});

test('the int64 extremes encode little-endian', () => {
  assert.equal(encodeClose(MAX_CLIENT_ID).toString('hex'), 'ffffffffffffff7f0000');
  assert.equal(encodeClose(MIN_CLIENT_ID).toString('hex'), '00000000000000800000');
  assert.equal(encodeClose(-1n).toString('hex'), 'ffffffffffffffff0000');
  assert.equal(encodeClose(0n).toString('hex'), '00000000000000000000');
});

test('an empty payload encodes to no frames (size 0 is reserved for close)', () => {
  assert.deepEqual(encodeFrame(1n, Buffer.alloc(0)), []);
});

test('ids outside int64, or not bigints, are refused with MUX_ERR_BAD_ID', () => {
  for (const bad of [MAX_CLIENT_ID + 1n, MIN_CLIENT_ID - 1n, 1 as unknown as bigint, '1' as unknown as bigint]) {
    assert.throws(() => encodeFrame(bad, Buffer.from('x')), (e) => hasCode(e, 'MUX_ERR_BAD_ID'));
    assert.throws(() => encodeClose(bad), (e) => hasCode(e, 'MUX_ERR_BAD_ID'));
  }
});
