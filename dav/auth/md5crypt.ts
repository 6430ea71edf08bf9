/**
 * The MD5-based crypt(3) scheme (Poul-Henning Kamp's `$1$`) and Apache's variant `$apr1$`, which only changes
 * the magic string. `htpasswd` writes `$apr1$` by default. Pure function; see crypt(3) and apr_md5.c.
 */
import { createHash } from 'node:crypto';
import { cryptRound, to64 } from './crypt-common.js';

/** Hash `password` with `salt` (at most 8 characters) under `magic` ('$apr1$' or '$1$'); returns the full string. */
export function md5crypt(password: string, salt: string, magic: '$apr1$' | '$1$'): string {
  const pw = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt.slice(0, 8), 'utf8');
  const md5 = () => createHash('md5');
  let final: Buffer = md5().update(pw).update(s).update(pw).digest();
  const ctx = md5().update(pw).update(magic).update(s);
  for (let left = pw.length; left > 0; left -= 16) ctx.update(final.subarray(0, Math.min(16, left)));
  for (let i = pw.length; i; i >>= 1) ctx.update(i & 1 ? Buffer.from([0]) : pw.subarray(0, 1));
  final = ctx.digest();
  for (let i = 0; i < 1000; i++) final = cryptRound('md5', i, final, pw, s);
  const f = (i: number) => final[i] as number;
  const out =
    to64((f(0) << 16) | (f(6) << 8) | f(12), 4) +
    to64((f(1) << 16) | (f(7) << 8) | f(13), 4) +
    to64((f(2) << 16) | (f(8) << 8) | f(14), 4) +
    to64((f(3) << 16) | (f(9) << 8) | f(15), 4) +
    to64((f(4) << 16) | (f(10) << 8) | f(5), 4) +
    to64(f(11), 2);
  return `${magic}${salt.slice(0, 8)}$${out}`;
}
