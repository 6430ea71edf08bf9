import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameDecoder, MAX_CLIENT_ID, MIN_CLIENT_ID } from '../../../mux/index.js';
import { hasCode } from '../../../src/errors.js';
import { decode, encodeAll, fuzzOnce, splitAt, type Frame } from './fuzz-case.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const WEBDAVD_ID = BigInt.asIntN(64, 0xffffffff8a3c1f20n);
const SAMPLE: Frame[] = [
  { id: WEBDAVD_ID, payload: Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n') },
  { id: 1n, payload: Buffer.from('PUT /a HTTP/1.1\r\n') },
  { id: WEBDAVD_ID, payload: Buffer.alloc(0) },
  { id: MAX_CLIENT_ID, payload: Buffer.from([0, 1, 2, 3, 255]) },
  { id: MIN_CLIENT_ID, payload: Buffer.from('x') },
  { id: 1n, payload: Buffer.alloc(0) },
  { id: WEBDAVD_ID, payload: Buffer.from('reused id, new connection') },
];

test('decodes the bytes spice-webdavd and spice-gtk put on the wire', () => {
  const stream = hex(
    '201f3c8affffffff 0300 474554' + // spice-webdavd: negative pointer-derived id, "GET"
      '201f3c8affffffff 0000' + // its close
      '0100000000000000 0100 41' + // id 1, "A"
      '0100000000000000 0000', // spice-gtk's close for id 1
  );
  assert.deepEqual(decode([stream]), [
    { id: WEBDAVD_ID, payload: Buffer.from('GET') },
    { id: WEBDAVD_ID, payload: Buffer.alloc(0) },
    { id: 1n, payload: Buffer.from('A') },
    { id: 1n, payload: Buffer.alloc(0) },
  ]);
});

test('a 65535-byte frame (size ffff) decodes whole', () => {
  const payload = Buffer.alloc(65535, 0x5a);
  const stream = Buffer.concat([hex('0200000000000000 ffff'), payload, hex('0200000000000000 0000')]);
  const frames = decode([stream]);
  assert.equal(frames.length, 2);
  assert.deepEqual(frames[0], { id: 2n, payload });
  assert.deepEqual(frames[1], { id: 2n, payload: Buffer.alloc(0) });
});

test('split at every byte boundary, the same frames come out', () => {
  const stream = encodeAll(SAMPLE);
  for (let k = 0; k <= stream.length; k++) {
    assert.deepEqual(decode([stream.subarray(0, k), stream.subarray(k)]), SAMPLE, `split at ${k}`);
  }
});

test('fed one byte at a time, the same frames come out', () => {
  const stream = encodeAll(SAMPLE);
  const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
  assert.deepEqual(decode(bytes), SAMPLE);
});

test('a 65535-byte frame split around every header and payload boundary', () => {
  const frames: Frame[] = [
    { id: -3n, payload: Buffer.alloc(65535, 7) },
    { id: 4n, payload: Buffer.from('tail') },
  ];
  const stream = encodeAll(frames);
  const near = [0, 1, 7, 8, 9, 10, 11, 65544, 65545, 65546, 65547, 65555, 65556];
  for (const a of near) for (const b of near) assert.deepEqual(decode(splitAt(stream, [a, b])), frames, `${a}/${b}`);
});

const frameArb: fc.Arbitrary<Frame> = fc.record({
  id: fc.oneof(fc.bigInt({ min: MIN_CLIENT_ID, max: MAX_CLIENT_ID }), fc.constantFrom(0n, 1n, -1n, WEBDAVD_ID)),
  payload: fc.oneof(
    { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) },
    { weight: 1, arbitrary: fc.integer({ min: 65000, max: 65535 }).map((n) => Buffer.alloc(n, n & 0xff)) },
  ),
}).map(({ id, payload }) => ({ id, payload })); // plain objects, comparable with deepEqual

/** Property: any frames, encoded and cut at any points, come back from `decodeWith` as themselves. */
function assertAnySplitDecodes(decodeWith: (chunks: Buffer[]) => Frame[]): void {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
      const stream = encodeAll(frames);
      const chunks = splitAt(
        stream,
        cuts.map((c) => (stream.length ? c % (stream.length + 1) : 0)),
      );
      assert.deepEqual(decodeWith(chunks), frames);
    }),
    { numRuns: 300 },
  );
}

test('property: any frames, split at any points, decode to themselves', () => {
  assertAnySplitDecodes(decode);
});

/** Streaming-mode decode: pieces are merged back into frames, checking the piece invariants on the way. */
function decodeStreaming(chunks: Buffer[]): Frame[] {
  const out: Frame[] = [];
  const buffers = new Set(chunks.map((c) => c.buffer));
  let expect = -1; // offset the next piece must have, or -1 at a frame boundary
  let lastId = 0n;
  const d = new FrameDecoder(
    (id, payload, offset) => {
      assert.ok(buffers.has(payload.buffer) || payload.length === 0, 'a view of an input chunk: never copied');
      if (offset === 0) {
        out.push({ id, payload: Buffer.from(payload) });
      } else {
        assert.equal(offset, expect, 'pieces are consecutive');
        assert.equal(id, lastId, 'no other frame in between');
        assert.ok(payload.length > 0, 'pieces are never empty');
        const last = out[out.length - 1] as Frame;
        last.payload = Buffer.concat([last.payload, payload]);
      }
      lastId = id;
      expect = offset + payload.length;
    },
    { streaming: true },
  );
  for (const c of chunks) d.push(c);
  d.end();
  assert.equal(d.frames, out.length, 'frames counts headers');
  return out;
}

test('streaming mode: any frames, split at any points, arrive as consecutive uncopied pieces of themselves', () => {
  assertAnySplitDecodes(decodeStreaming);
  const stream = encodeAll(SAMPLE);
  for (let k = 0; k <= stream.length; k++) {
    assert.deepEqual(decodeStreaming([stream.subarray(0, k), stream.subarray(k)]), SAMPLE, `split at ${k}`);
  }
});

test('zero-copy when the payload lies inside one chunk; one copy when it straddles chunks', () => {
  // A buffer with its own ArrayBuffer (not Node's shared pool), so "same memory" is a meaningful check.
  const stream = Buffer.from(new Uint8Array(encodeAll([{ id: 9n, payload: Buffer.from('hello world') }])).buffer);
  const seen: Buffer[] = [];
  const d = new FrameDecoder((_id, p) => seen.push(p));
  d.push(stream);
  assert.equal(seen[0]?.buffer, stream.buffer);
  assert.equal(seen[0]?.byteOffset, stream.byteOffset + 10);

  const chunks = splitAt(stream, [14]);
  d.push(chunks[0] as Buffer);
  d.push(chunks[1] as Buffer);
  assert.deepEqual(seen[1], Buffer.from('hello world'));
  assert.notEqual(seen[1]?.buffer, stream.buffer);
});

test('end() inside a frame throws MUX_ERR_TRUNCATED, at a boundary it does not', () => {
  const stream = encodeAll([{ id: 1n, payload: Buffer.from('abcdef') }]);
  for (let k = 1; k < stream.length; k++) {
    const d = new FrameDecoder(() => {});
    d.push(stream.subarray(0, k));
    assert.throws(
      () => d.end(),
      (e) => hasCode(e, 'MUX_ERR_TRUNCATED') && e instanceof Error && /inside a frame/.test(e.message),
      `cut at ${k}`,
    );
    assert.doesNotThrow(() => d.end(), 'end() is idempotent');
  }
  const d = new FrameDecoder(() => {});
  d.push(stream);
  assert.doesNotThrow(() => d.end());
});

test('push() after end() throws MUX_ERR_DECODER_ENDED', () => {
  const d = new FrameDecoder(() => {});
  d.end();
  assert.throws(() => d.push(Buffer.from([1])), (e) => hasCode(e, 'MUX_ERR_DECODER_ENDED'));
});

test('a throwing handler propagates and ends the decoder, which then refuses input', () => {
  const boom = new Error('handler bug');
  const d = new FrameDecoder(() => {
    throw boom;
  });
  assert.throws(() => d.push(encodeAll([{ id: 1n, payload: Buffer.from('a') }, { id: 2n, payload: Buffer.from('b') }])), boom);
  assert.throws(() => d.push(Buffer.from([0])), (e) => hasCode(e, 'MUX_ERR_DECODER_ENDED'));
});

test('fuzz: 100000 random byte streams never crash or hang the decoder, only clean errors', () => {
  for (let seed = 1; seed <= 100_000; seed++) fuzzOnce(seed);
});
