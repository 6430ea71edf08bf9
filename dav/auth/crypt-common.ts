/**
 * What the crypt(3) schemes derived from Poul-Henning Kamp's MD5 crypt share (MD5 crypt itself and Drepper's
 * SHA-crypt): their round, and their base-64 (own alphabet, least significant six bits first, each scheme
 * feeding it the digest's bytes in its own shuffled order, 24 bits at a time).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

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

/**
 * Round `i` of the stretching loop: the previous digest and the password alternate at both ends, the salt joins
 * unless i is a multiple of 3, the password unless a multiple of 7. SHA-crypt feeds it its derived sequences.
 */
export function cryptRound(algorithm: string, i: number, digest: Buffer, password: Buffer, salt: Buffer): Buffer {
  const h = createHash(algorithm);
  h.update(i & 1 ? password : digest);
  if (i % 3) h.update(salt);
  if (i % 7) h.update(password);
  h.update(i & 1 ? digest : password);
  return h.digest();
}

/** Whether two hash strings are equal, in time that does not depend on where they differ. */
export function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
