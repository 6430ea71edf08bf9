import type { Readable } from 'node:stream';
import type { DavPath } from '../paths.js';
import type { DavError } from '../errors.js';
import type { Checksum } from '../headers/oc-checksum.js';

/** What the server knows about one resource. */
export interface Entry {
  path: DavPath;
  collection: boolean;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  atimeMs: number;
  /** Creation time where the file system records it (statx btime), else the change time. */
  birthtimeMs: number;
  /** File mode bits (permissions), for Win32FileAttributes' read-only bit. */
  mode: number;
  /** Strong entity tag, quoted. */
  etag: string;
}

/** An open file for GET: its entry at open time and ranged streams over the same descriptor. */
export interface ReadHandle {
  entry: Entry;
  /** Read up to `length` bytes at `position` into `buf` (always off the event loop: bulk reads); 0 at the end. */
  read(buf: Buffer, length: number, position: number): Promise<number>;
  /** Read a whole small file in one call. */
  readAll(): Promise<Buffer>;
  close(): Promise<void>;
}

/** A PUT target, resolved and checked; `commit` stores the body. */
export interface PendingWrite {
  /** What is there now (null when the PUT creates the file). */
  existing: Entry | null;
  /**
   * Store the body: 413 beyond `maxBytes`. `declaredLength` (the Content-Length, when known) lets small bodies
   * skip the stream machinery.
   */
  commit(body: Readable, options: CommitOptions): Promise<{ created: boolean; entry: Entry }>;
}

/** How a PUT body is stored. */
export interface CommitOptions {
  /** 413 beyond this many bytes. */
  maxBytes: number;
  /** The Content-Length, when known: small bodies skip the stream machinery. */
  declaredLength?: number;
  onBytes?: (n: number) => void;
  /**
   * For a conditional PUT: what the target must still be when the upload is complete (its ETag, or null for
   * "absent"); otherwise 412 and nothing is replaced. The conditions were checked before the body, which can take
   * minutes to arrive; a change made on the host meanwhile must not be overwritten unseen.
   */
  expect?: { etag: string | null };
  /** The stored file's modification time, in seconds since the epoch, set before it takes the target's name. */
  mtime?: number;
  /** Digests the body must have (`OC-Checksum`), checked before the file takes the target's name: else 400. */
  checksums?: readonly Checksum[];
}

/** A failure on one member of a collection during DELETE/COPY/MOVE, reported in a 207. */
export interface MemberFailure {
  path: DavPath;
  error: DavError;
}

/** Free and used bytes of the storage holding a resource (RFC 4331). */
export interface Space {
  available: number;
  used: number;
}

/**
 * The narrow storage interface every method goes through. Paths are DAV paths (`/a/b`, decoded). Every method
 * throws DavError: 403 for a path the symlink policy refuses (or the host denies), 404 when the resource is
 * missing, 409 when a parent is missing or not a collection, 405 when a file operation meets a collection,
 * 507 when the host is out of space.
 */
export interface Storage {
  /** The resource at `path`, or null when nothing is there. */
  stat(path: DavPath): Promise<Entry | null>;
  /** The members of a collection (any order), hiding what the symlink policy does not follow. 404/409 (not a collection). */
  list(path: DavPath): Promise<Entry[]>;
  /** Open a file for reading; a collection gives `null` with its entry. 404 when missing. */
  openRead(path: DavPath): Promise<ReadHandle | { entry: Entry; collection: true }>;
  /**
   * Get ready to store a body at `path`, resolving it once: 405 on a collection, 409 without a parent
   * collection, 403 on a file this process may not write (chmod a-w) — thrown here, before the body is accepted. The write itself is atomic: a temporary file in the
   * target directory, renamed over the target; if the body fails or ends early, the old file (or nothing) stays.
   */
  prepareWrite(path: DavPath): Promise<PendingWrite>;
  /** Create an empty file if nothing is there (LOCK on an unmapped URL); true when created. 409 without parent. */
  createEmpty(path: DavPath): Promise<boolean>;
  /** Create a collection. 405 if something exists, 409 without parent. */
  mkcol(path: DavPath): Promise<void>;
  /** Remove a resource and everything below it; returns the members that could not be removed (empty = all gone). */
  remove(path: DavPath): Promise<MemberFailure[]>;
  /**
   * Copy `from` to `to`; depth 0 copies a collection without its members. An existing `to` is 412 unless
   * `replace`; then it is replaced only by a complete copy (a failed copy leaves it as it was). Returns the
   * members of the old `to` that could not be deleted (nothing is copied then). A `to` that is `from` itself
   * under another spelling (a host file system that ignores case), or a file this process may not write, is 403;
   * over a hard link of `from`, the copy becomes a file of its own.
   */
  copy(from: DavPath, to: DavPath, depth: 0 | 'infinity', replace: boolean): Promise<MemberFailure[]>;
  /**
   * Move `from` to `to`. An existing `to` is 412 unless `replace`: a file then replaces a file in one step; a
   * collection on either side deletes the old `to` first, returning the members that could not be deleted
   * (nothing is moved then). A `to` that is `from` itself under another name is not replaced but renamed to:
   * `photos` becomes `Photos` on a host that ignores case, whatever `replace` says.
   */
  move(from: DavPath, to: DavPath, replace: boolean): Promise<MemberFailure[]>;
  /** Set access and/or modification times of the real file. */
  setTimes(path: DavPath, times: { atimeMs?: number; mtimeMs?: number }): Promise<void>;
  /** Free and used bytes of the file system holding `path`. */
  space(path: DavPath): Promise<Space>;
}
