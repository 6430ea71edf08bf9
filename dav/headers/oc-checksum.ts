/**
 * `OC-Checksum` (ownCloud's and Nextcloud's PUT header, which rclone sends with vendor=owncloud or nextcloud, and
 * their sync clients too): the digest of the body, `SHA1:<hex>`, so that a server can refuse an upload that
 * arrived damaged instead of keeping it.
 */
import { badRequest } from '../errors.js';

/** A digest the body of a PUT must have: a node:crypto algorithm and its lower-case hex value. */
export interface Checksum {
  algorithm: 'md5' | 'sha1' | 'sha256';
  hex: string;
}

/** The types this server can check, with the length of their hex digests. */
const KNOWN = new Map<string, { algorithm: Checksum['algorithm']; length: number }>([
  ['MD5', { algorithm: 'md5', length: 32 }],
  ['SHA1', { algorithm: 'sha1', length: 40 }],
  ['SHA256', { algorithm: 'sha256', length: 64 }],
]);

/**
 * The digests to check from an `OC-Checksum` value: one or more `TYPE:hex`, separated by spaces. Types this
 * server does not compute (ADLER32, CRC32) are skipped, as ownCloud skips them, so an upload naming only those is
 * not checked. A known type with a malformed digest is a 400, before the body is read.
 */
export function parseOcChecksum(raw: string | undefined): Checksum[] {
  if (raw === undefined) return [];
  const out: Checksum[] = [];
  for (const item of raw.trim().split(/\s+/)) {
    const colon = item.indexOf(':');
    const known = colon < 0 ? undefined : KNOWN.get(item.slice(0, colon).toUpperCase());
    if (!known) continue;
    const hex = item.slice(colon + 1).toLowerCase();
    if (hex.length !== known.length || !/^[0-9a-f]+$/.test(hex)) {
      throw badRequest('DAV_ERR_BAD_CHECKSUM', `OC-Checksum: ${item.slice(0, colon)} must be ${known.length} hex digits, not "${item.slice(colon + 1, colon + 80)}"`);
    }
    out.push({ algorithm: known.algorithm, hex });
  }
  return out;
}
