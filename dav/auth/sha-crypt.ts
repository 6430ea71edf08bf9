/**
 * SHA-crypt: Ulrich Drepper's SHA-256 (`$5$`) and SHA-512 (`$6$`) schemes of crypt(3), which glibc,
 * `openssl passwd -5/-6` and `htpasswd -2/-5` write. Pure, and as slow as its setting asks (up to a billion rounds):
 * the server runs it in a worker thread (slow-hash.ts).
 *
 * Setting: `$5$` or `$6$`, an optional `rounds=N$` (default 5,000, clamped to 1,000..999,999,999, and written back
 * only when given), a salt of at most 16 characters up to the next `$`, then (in a stored hash) the digest.
 */
import { createHash } from 'node:crypto';
import { cryptRound, to64 } from './crypt-common.js';

export type ShaCryptPrefix = '$5$' | '$6$';

/** What a setting asks for. */
export interface ShaCryptSetting {
  prefix: ShaCryptPrefix;
  rounds: number;
  /** Whether `rounds=` was given: the result then names it. */
  roundsGiven: boolean;
  salt: string;
}

const ROUNDS_DEFAULT = 5000;
const ROUNDS_MIN = 1000;
const ROUNDS_MAX = 999_999_999;
const SALT_MAX = 16;

/**
 * The order in which each scheme's digest bytes enter the base-64 text, three at a time (most significant first);
 * the bytes left over at the end are handled by TAIL. From the specification's encoding tables.
 */
const ORDER: Record<ShaCryptPrefix, readonly (readonly [number, number, number])[]> = {
  $5$: [
    [0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14],
    [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29],
  ],
  $6$: [
    [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48],
    [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13],
    [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
  ],
};
const TAIL: Record<ShaCryptPrefix, (d: Buffer) => string> = {
  $5$: (d) => to64(((d[31] as number) << 8) | (d[30] as number), 3),
  $6$: (d) => to64(d[63] as number, 2),
};
const ALGORITHM: Record<ShaCryptPrefix, string> = { $5$: 'sha256', $6$: 'sha512' };

/** Parse the setting at the start of `text` (a stored hash or a bare setting); null when it is not SHA-crypt. */
export function parseShaCryptSetting(text: string): ShaCryptSetting | null {
  const m = /^(\$[56]\$)(?:rounds=(\d{1,10})\$)?([^$]*)/.exec(text);
  if (!m) return null;
  const given = m[2];
  return {
    prefix: m[1] as ShaCryptPrefix,
    rounds: given === undefined ? ROUNDS_DEFAULT : Math.min(ROUNDS_MAX, Math.max(ROUNDS_MIN, Number(given))),
    roundsGiven: given !== undefined,
    salt: (m[3] as string).slice(0, SALT_MAX),
  };
}

/** `source` repeated to `length` bytes. */
function stretch(source: Buffer, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let off = 0; off < length; off += source.length) source.copy(out, off, 0, Math.min(source.length, length - off));
  return out;
}

/** The hash of `password` under `setting`: the full hash string (`$6$rounds=N$salt$digest`). */
export function shaCrypt(password: string, setting: ShaCryptSetting): string {
  const { prefix, rounds, salt } = setting;
  const algorithm = ALGORITHM[prefix];
  const hash = () => createHash(algorithm);
  const p = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt, 'utf8');

  const b = hash().update(p).update(s).update(p).digest();
  const a = hash().update(p).update(s).update(stretch(b, p.length));
  for (let n = p.length; n > 0; n >>= 1) a.update(n & 1 ? b : p);
  let c: Buffer = a.digest();

  const dp = hash();
  for (let i = 0; i < p.length; i++) dp.update(p);
  const pSeq = stretch(dp.digest(), p.length);
  const ds = hash();
  for (let i = 0; i < 16 + (c[0] as number); i++) ds.update(s);
  const sSeq = stretch(ds.digest(), s.length);

  for (let i = 0; i < rounds; i++) c = cryptRound(algorithm, i, c, pSeq, sSeq);

  let text = '';
  for (const [x, y, z] of ORDER[prefix]) text += to64(((c[x] as number) << 16) | ((c[y] as number) << 8) | (c[z] as number), 4);
  text += TAIL[prefix](c);
  return `${prefix}${setting.roundsGiven ? `rounds=${rounds}$` : ''}${salt}$${text}`;
}
