/**
 * The base-64 of the crypt(3) family (MD5 crypt, SHA-crypt): its own alphabet, least significant six bits first.
 * Each scheme feeds it the digest's bytes in its own shuffled order, 24 bits at a time.
 */
const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `count` characters for the low 6 × `count` bits of `value`, least significant first. */
export function to64(value: number, count: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < count; i++) {
    out += ITOA64[v & 0x3f];
    v >>>= 6;
  }
  return out;
}
