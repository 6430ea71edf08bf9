/**
 * The digests a PUT body must have (`OC-Checksum`), computed as the body streams to the temporary file and
 * compared before the file takes the target's name: a body that arrived damaged never replaces anything.
 */
import { createHash, type Hash } from 'node:crypto';
import { DavError } from '../errors.js';
import type { Checksum } from '../headers/oc-checksum.js';

export class BodyDigests {
  readonly #pending: { want: Checksum; hash: Hash }[];

  /** Null when there is nothing to check, so that plain uploads pay nothing. */
  static of(checksums: readonly Checksum[] | undefined): BodyDigests | null {
    return checksums?.length ? new BodyDigests(checksums) : null;
  }

  private constructor(checksums: readonly Checksum[]) {
    this.#pending = checksums.map((want) => ({ want, hash: createHash(want.algorithm) }));
  }

  update(chunk: Buffer): void {
    for (const { hash } of this.#pending) hash.update(chunk);
  }

  /** Throws 400 `DAV_ERR_CHECKSUM_MISMATCH` when a digest differs. Call once, after the last chunk. */
  verify(path: string): void {
    for (const { want, hash } of this.#pending) {
      const got = hash.digest('hex');
      if (got !== want.hex) {
        throw new DavError(400, 'DAV_ERR_CHECKSUM_MISMATCH', `the body of ${path} does not match its OC-Checksum (${want.algorithm} ${got}, expected ${want.hex}): nothing was replaced`);
      }
    }
  }
}
