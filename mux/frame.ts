import { MuxError } from './errors.js';

// ┌───────────────────────────── one mux frame (protocol.md §a.1) ─────────────────────────────┐
// │ offset 0   int64  LE  client_id   signed; allocated by the guest; may be negative          │
// │ offset 8   uint16 LE  size        0..65535; 0 = "client_id closed" (no payload follows)     │
// │ offset 10  size bytes data        raw bytes of that client's TCP stream                    │
// └─────────────────────────────────────────────────────────────────────────────────────────────┘
// Packed, no padding, no magic, no checksum, no resync: losing framing kills the stream. spice-gtk converts to
// little-endian explicitly; spice-webdavd writes native order, which is LE on every guest it runs on (§a.2).

/** Bytes in a frame header: int64 client id + uint16 size. */
export const FRAME_HEADER_SIZE = 10;

/** Largest payload one frame can carry (the uint16 size field); bigger writes are split into several frames. */
export const MAX_FRAME_PAYLOAD = 65535;

/** Smallest client id on the wire (int64). */
export const MIN_CLIENT_ID = -(2n ** 63n);

/** Largest client id on the wire (int64). */
export const MAX_CLIENT_ID = 2n ** 63n - 1n;

/**
 * Throws `MuxError` `MUX_ERR_BAD_ID` unless `id` is a bigint within int64. Ids are compared as bigints all the
 * way through, so a `number` (which cannot hold every int64) is refused rather than silently converted.
 */
export function assertClientId(id: unknown): asserts id is bigint {
  if (typeof id !== 'bigint' || id < MIN_CLIENT_ID || id > MAX_CLIENT_ID) {
    throw new MuxError('MUX_ERR_BAD_ID', `mux client id must be a bigint in the int64 range, got ${String(id)}`);
  }
}

function header(id: bigint, size: number): Buffer {
  // allocUnsafe takes 10 bytes from Node's shared pool: no zero-fill, no per-frame ArrayBuffer.
  const h = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  h.writeBigInt64LE(id, 0);
  h.writeUInt16LE(size, 8);
  return h;
}

/**
 * Encodes `payload` for client `id` as `[header, payload]` pairs, flattened: `[h0, p0, h1, p1, ...]`. The payload
 * is never copied: each `p` is `payload` itself or a `subarray` of it, at most {@link MAX_FRAME_PAYLOAD} bytes
 * long, so a caller writes the pairs with `cork()`/`uncork()` (or `writev`) and the bytes go out as they are.
 * An empty payload encodes to `[]`: a size-0 frame means "closed", so it is only ever made by
 * {@link encodeClose}. Throws `MUX_ERR_BAD_ID` for an id outside int64.
 */
export function encodeFrame(id: bigint, payload: Buffer): Buffer[] {
  assertClientId(id);
  return splitFrames(payload, (size) => header(id, size));
}

/**
 * The splitting behind {@link encodeFrame}, with the header made by `makeHeader(size)`: lets a channel reuse its
 * id's encoded bytes instead of re-encoding the bigint per frame. With `remainderFirst`, the frame shorter than
 * 65535 (if any) comes first instead of last: a writer that stops at its transport's high-water mark then sends
 * the short frame together with the next full one, instead of alone in a write of its own (a 64 KiB write is
 * 1 + 65535 bytes of payload). Internal to mux/.
 */
export function splitFrames(payload: Buffer, makeHeader: (size: number) => Buffer, remainderFirst = false): Buffer[] {
  const n = payload.length;
  if (n <= MAX_FRAME_PAYLOAD) return n === 0 ? [] : [makeHeader(n), payload];
  const out: Buffer[] = [];
  let off = 0;
  const remainder = n % MAX_FRAME_PAYLOAD;
  if (remainderFirst && remainder > 0) {
    out.push(makeHeader(remainder), payload.subarray(0, remainder));
    off = remainder;
  }
  for (; off < n; off += MAX_FRAME_PAYLOAD) {
    const part = payload.subarray(off, Math.min(off + MAX_FRAME_PAYLOAD, n));
    out.push(makeHeader(part.length), part);
  }
  return out;
}

/**
 * Encodes the size-0 frame that tells the peer client `id` is gone: a bare 10-byte header. Throws
 * `MUX_ERR_BAD_ID` for an id outside int64.
 */
export function encodeClose(id: bigint): Buffer {
  assertClientId(id);
  return header(id, 0);
}
