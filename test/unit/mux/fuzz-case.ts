// Shared by the decoder tests and bench/fuzz-mux.ts: frame helpers and one seeded fuzz case.
import assert from 'node:assert/strict';
import { encodeClose, encodeFrame, FrameDecoder } from '../../../mux/index.js';
import { hasCode } from '../../../src/errors.js';

/** A decoded (or to-be-encoded) frame; an empty payload is a size-0 close. */
export interface Frame {
  id: bigint;
  payload: Buffer;
}


/** The wire bytes of `frames`; an empty payload is a size-0 close frame. */
export function encodeAll(frames: Frame[]): Buffer {
  return Buffer.concat(frames.flatMap((f) => (f.payload.length === 0 ? [encodeClose(f.id)] : encodeFrame(f.id, f.payload))));
}

/** Feeds `chunks` to a fresh decoder, ends it, and returns the frames it produced (payloads copied). */
export function decode(chunks: Buffer[]): Frame[] {
  const out: Frame[] = [];
  const d = new FrameDecoder((id, payload) => out.push({ id, payload: Buffer.from(payload) }));
  for (const c of chunks) d.push(c);
  d.end();
  return out;
}

/** `buf` cut at `points` (clamped, deduplicated); empty pieces included. */
export function splitAt(buf: Buffer, points: number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => Math.min(Math.max(p, 0), buf.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, buf.length]) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  return out;
}

/** xorshift32: a fast, seeded PRNG, so a failing fuzz case can be replayed from its seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/**
 * One fuzz case: a random byte stream (half pure noise, half real frames with random bytes flipped and a random
 * cut), split at random points. The decoder must never throw from push(), must never hang, and what it decodes
 * must re-encode to exactly the prefix of the stream it consumed; end() throws MUX_ERR_TRUNCATED exactly when
 * bytes are left over. The streaming decoder must agree with the reassembling one.
 */
export function fuzzOnce(seed: number): void {
  const r = rng(seed);
  let stream: Buffer;
  if (r() < 0.5) {
    stream = Buffer.alloc(Math.floor(r() * 64));
    for (let i = 0; i < stream.length; i++) stream[i] = Math.floor(r() * 256);
  } else {
    const frames: Frame[] = [];
    for (let n = Math.floor(r() * 6); n > 0; n--) {
      frames.push({ id: BigInt(Math.floor(r() * 2 ** 32)) - 2n ** 31n, payload: Buffer.alloc(Math.floor(r() * 40), 0x61) });
    }
    stream = encodeAll(frames);
    for (let flips = Math.floor(r() * 3); flips > 0 && stream.length > 0; flips--) {
      stream[Math.floor(r() * stream.length)] = Math.floor(r() * 256);
    }
    stream = stream.subarray(0, Math.floor(r() * (stream.length + 1)));
  }
  const cuts = Array.from({ length: Math.floor(r() * 5) }, () => Math.floor(r() * (stream.length + 1)));
  const chunks = splitAt(stream, cuts);
  const frames: Frame[] = [];
  const d = new FrameDecoder((id, payload) => frames.push({ id, payload: Buffer.from(payload) }));
  for (const c of chunks) d.push(c);
  const consumed = encodeAll(frames);
  assert.deepEqual(consumed, stream.subarray(0, consumed.length), `seed ${seed}: decoded frames re-encode to the input`);
  const truncated = consumed.length !== stream.length;
  if (truncated) assert.throws(() => d.end(), (e) => hasCode(e, 'MUX_ERR_TRUNCATED'), `seed ${seed}: leftover bytes`);
  else d.end();

  // Streaming mode over the same chunks: the same frames, in uncopied pieces, plus at most the start of the
  // frame that was cut off.
  const pieces: Frame[] = [];
  const s = new FrameDecoder(
    (id, payload, offset) => {
      if (offset === 0) pieces.push({ id, payload });
      else (pieces[pieces.length - 1] as Frame).payload = Buffer.concat([(pieces[pieces.length - 1] as Frame).payload, payload]);
    },
    { streaming: true },
  );
  for (const c of chunks) s.push(c);
  assert.deepEqual(pieces.slice(0, frames.length), frames, `seed ${seed}: streaming agrees`);
  assert.ok(pieces.length - frames.length <= (truncated ? 1 : 0), `seed ${seed}: at most one partial frame`);
  if (truncated) assert.throws(() => s.end(), (e) => hasCode(e, 'MUX_ERR_TRUNCATED'), `seed ${seed}: streaming end`);
  else s.end();
}
