/**
 * The file-system backend: one host folder behind a Confinement. Copies, moves and removals use fs-extra;
 * PUT writes a temporary file in the target directory and renames it over the target, so a reader never sees a
 * half-written file and an aborted upload leaves the old one.
 */
import { constants as C, createReadStream, type Stats } from 'node:fs';
import { open, readdir, stat, lstat, mkdir, rename, unlink, rmdir, utimes, statfs, realpath, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { dirname } from 'node:path';
import fse from 'fs-extra';
import { DavError, conflict, fsError, notFound } from '../errors.js';
import { childOf, type Confinement, type DavPath } from '../paths.js';
import type { Entry, MemberFailure, ReadHandle, Space, Storage } from './backend.js';

/** Names of in-flight PUT temporaries: hidden from listings and never served. */
export const TEMP_NAME = /^\.spicedav-[0-9a-f]{16}\.part$/;

/** Strong ETag from inode, size and modification time (µs): changes whenever the content can have. */
export function etagOf(st: Stats): string {
  return `"${st.ino.toString(36)}-${st.size.toString(36)}-${Math.round(st.mtimeMs * 1000).toString(36)}"`;
}

/** Build an Entry from fs.Stats. */
export function entryOf(path: DavPath, st: Stats): Entry {
  return {
    path,
    collection: st.isDirectory(),
    size: st.isDirectory() ? 0 : st.size,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    atimeMs: st.atimeMs,
    birthtimeMs: st.birthtimeMs > 0 ? st.birthtimeMs : st.ctimeMs,
    mode: st.mode,
    etag: etagOf(st),
  };
}

/** Options of the file-system backend. */
export interface FsStorageOptions {
  /** Read size for streamed GET bodies. */
  readChunkBytes: number;
}

/** Storage over a real directory. See `Storage` for the error contract. */
export class FsStorage implements Storage {
  readonly #conf: Confinement;
  readonly #chunk: number;
  // With the 'never' policy a file is opened with O_NOFOLLOW too, so a link swapped in after the check is not
  // followed either.
  readonly #noFollow: number;

  constructor(confinement: Confinement, options: FsStorageOptions) {
    this.#conf = confinement;
    this.#chunk = options.readChunkBytes;
    this.#noFollow = confinement.policy === 'never' ? C.O_NOFOLLOW : 0;
  }

  async stat(path: DavPath): Promise<Entry | null> {
    const r = await this.#conf.resolve(path);
    if (!r.exists) return null;
    let st: Stats;
    try {
      st = await stat(r.target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw fsError(err, path);
    }
    if (!st.isFile() && !st.isDirectory()) throw special(path);
    return entryOf(path, st);
  }

  async list(path: DavPath): Promise<Entry[]> {
    const r = await this.#conf.resolve(path);
    if (!r.exists) throw notFound(path);
    let dirents;
    try {
      dirents = await readdir(r.target, { withFileTypes: true });
    } catch (err) {
      throw fsError(err, path);
    }
    const base = r.target === '/' ? '' : r.target;
    const out: Entry[] = [];
    await Promise.all(
      dirents.map(async (d) => {
        if (TEMP_NAME.test(d.name)) return;
        let real = `${base}/${d.name}`;
        try {
          if (d.isSymbolicLink()) {
            if (this.#conf.policy === 'never') return;
            real = await realpath(real);
            if (!this.#conf.contains(real)) return;
          } else if (!d.isFile() && !d.isDirectory()) {
            return;
          }
          const st = await stat(real);
          if (st.isFile() || st.isDirectory()) out.push(entryOf(childOf(path, d.name), st));
        } catch {
          // Gone between readdir and stat, or a dangling link: not listed.
        }
      }),
    );
    return out;
  }

  async openRead(path: DavPath): Promise<ReadHandle | { entry: Entry; collection: true }> {
    const r = await this.#conf.resolve(path);
    if (!r.exists) throw notFound(path);
    let fh: FileHandle;
    try {
      // O_NONBLOCK: opening a FIFO that slipped in must not hang a thread-pool thread.
      fh = await open(r.target, C.O_RDONLY | C.O_NONBLOCK | this.#noFollow);
    } catch (err) {
      throw fsError(err, path);
    }
    let st: Stats;
    try {
      st = await fh.stat();
    } catch (err) {
      await fh.close();
      throw fsError(err, path);
    }
    if (st.isDirectory()) {
      await fh.close();
      return { entry: entryOf(path, st), collection: true };
    }
    if (!st.isFile()) {
      await fh.close();
      throw special(path);
    }
    const chunk = this.#chunk;
    return {
      entry: entryOf(path, st),
      // A stream over the numeric fd (not the FileHandle): FileHandle streams hold a reference that makes
      // fh.close() wait for them, and several ranges are read from the same descriptor.
      stream: (start, end) => createReadStream('', { fd: fh.fd, start, end, autoClose: false, highWaterMark: chunk }),
      readAll: async () => {
        const buf = Buffer.allocUnsafe(st.size);
        let off = 0;
        while (off < st.size) {
          const { bytesRead } = await fh.read(buf, off, st.size - off, off);
          if (bytesRead === 0) break;
          off += bytesRead;
        }
        return off === st.size ? buf : buf.subarray(0, off);
      },
      close: () => fh.close(),
    };
  }

  async write(path: DavPath, body: Readable, options: { maxBytes: number; onBytes?: (n: number) => void }): Promise<{ created: boolean; entry: Entry }> {
    const r = await this.#conf.resolve(path);
    let oldMode: number | null = null;
    if (r.exists) {
      const st = await stat(r.target).catch((err: unknown) => {
        throw fsError(err, path);
      });
      if (st.isDirectory()) throw new DavError(405, 'DAV_ERR_IS_COLLECTION', `${path} is a collection; PUT needs a file name`);
      if (!st.isFile()) throw special(path);
      oldMode = st.mode & 0o7777;
    } else if (!r.parentIsDir) {
      throw conflict(`the parent collection of ${path} does not exist; MKCOL it first`);
    }
    const tmp = `${dirname(r.target)}/.spicedav-${randomBytes(8).toString('hex')}.part`;
    let fh: FileHandle;
    try {
      fh = await open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o666);
    } catch (err) {
      throw fsError(err, path);
    }
    let committed = false;
    try {
      if (oldMode !== null) await fh.chmod(oldMode);
      let total = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          total += chunk.length;
          if (total > options.maxBytes) {
            cb(new DavError(413, 'DAV_ERR_TOO_LARGE', `the upload exceeds the limit of ${options.maxBytes} bytes`));
            return;
          }
          options.onBytes?.(chunk.length);
          cb(null, chunk);
        },
      });
      // The write stream owns and closes the handle (a FileHandle with a live stream cannot be closed apart).
      await pipeline(body, counter, fh.createWriteStream({ highWaterMark: 1024 * 1024 }));
      const st = await stat(tmp);
      await rename(tmp, r.target);
      committed = true;
      return { created: !r.exists, entry: entryOf(path, st) };
    } catch (err) {
      throw fsError(err, path);
    } finally {
      if (!committed) {
        await fh.close().catch(() => {});
        await unlink(tmp).catch(() => {});
      }
    }
  }

  async createEmpty(path: DavPath): Promise<boolean> {
    const r = await this.#conf.resolve(path);
    if (r.exists) return false;
    if (!r.parentIsDir) throw conflict(`the parent collection of ${path} does not exist`);
    try {
      const fh = await open(r.target, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o666);
      await fh.close();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw fsError(err, path);
    }
  }

  async mkcol(path: DavPath): Promise<void> {
    const r = await this.#conf.resolve(path);
    if (r.exists) throw new DavError(405, 'DAV_ERR_EXISTS', `${path} already exists`);
    if (!r.parentIsDir) throw conflict(`the parent collection of ${path} does not exist`);
    try {
      await mkdir(r.target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new DavError(405, 'DAV_ERR_EXISTS', `${path} already exists`);
      throw fsError(err, path);
    }
  }

  async remove(path: DavPath): Promise<MemberFailure[]> {
    const r = await this.#conf.resolve(path);
    if (!r.exists) throw notFound(path);
    try {
      await fse.remove(r.entry);
      return [];
    } catch (err) {
      // The fast path stopped at the first error; walk the tree to remove what can be removed and name what can't.
      const failures: MemberFailure[] = [];
      await removeWalk(r.entry, path, failures);
      if (failures.length === 0) return [];
      if (failures.length === 1 && failures[0]?.path === path) throw fsError(err, path);
      return failures;
    }
  }

  async copy(from: DavPath, to: DavPath, depth: 0 | 'infinity'): Promise<void> {
    const src = await this.#conf.resolve(from);
    if (!src.exists) throw notFound(from);
    const dst = await this.#target(to);
    try {
      const st = await stat(src.target);
      if (st.isDirectory() && depth === 0) {
        await mkdir(dst);
        return;
      }
      await fse.copy(src.target, dst, {
        dereference: false,
        errorOnExist: true,
        overwrite: false,
        preserveTimestamps: true,
        filter: (p: string) => !TEMP_NAME.test(p.slice(p.lastIndexOf('/') + 1)),
      });
    } catch (err) {
      throw fsError(err, to);
    }
  }

  async move(from: DavPath, to: DavPath): Promise<void> {
    const src = await this.#conf.resolve(from);
    if (!src.exists) throw notFound(from);
    const dst = await this.#target(to);
    try {
      await fse.move(src.entry, dst, { overwrite: false });
    } catch (err) {
      throw fsError(err, to);
    }
  }

  async setTimes(path: DavPath, times: { atimeMs?: number; mtimeMs?: number }): Promise<void> {
    const r = await this.#conf.resolve(path);
    if (!r.exists) throw notFound(path);
    try {
      const st = await stat(r.target);
      await utimes(r.target, (times.atimeMs ?? st.atimeMs) / 1000, (times.mtimeMs ?? st.mtimeMs) / 1000);
    } catch (err) {
      throw fsError(err, path);
    }
  }

  async space(path: DavPath): Promise<Space> {
    const r = await this.#conf.resolve(path);
    try {
      const s = await statfs(r.exists ? r.target : this.#conf.root);
      return { available: s.bavail * s.bsize, used: (s.blocks - s.bfree) * s.bsize };
    } catch (err) {
      throw fsError(err, path);
    }
  }

  /** Resolve a destination that must not exist yet and whose parent must be a collection. */
  async #target(to: DavPath): Promise<string> {
    const dst = await this.#conf.resolve(to);
    if (dst.exists) throw new DavError(412, 'DAV_ERR_EXISTS', `${to} already exists`);
    if (!dst.parentIsDir) throw conflict(`the parent collection of ${to} does not exist`);
    return dst.target;
  }
}

function special(path: DavPath): DavError {
  return new DavError(403, 'DAV_ERR_SPECIAL_FILE', `${path} is not a regular file or directory (device, FIFO or socket) and is not served`);
}

/** Depth-first removal that keeps going past failures, recording the members that stay. */
async function removeWalk(real: string, path: DavPath, failures: MemberFailure[]): Promise<boolean> {
  let isDir = false;
  try {
    const st = await lstat(real);
    isDir = st.isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    failures.push({ path, error: fsError(err, path) });
    return false;
  }
  if (!isDir) {
    try {
      await unlink(real);
      return true;
    } catch (err) {
      failures.push({ path, error: fsError(err, path) });
      return false;
    }
  }
  let names: string[] = [];
  try {
    names = await readdir(real);
  } catch (err) {
    failures.push({ path, error: fsError(err, path) });
    return false;
  }
  let all = true;
  for (const n of names) all = (await removeWalk(`${real}/${n}`, childOf(path, n), failures)) && all;
  if (!all) return false; // RFC 4918 §9.6.1: the ancestors of a failed member are not reported.
  try {
    await rmdir(real);
    return true;
  } catch (err) {
    failures.push({ path, error: fsError(err, path) });
    return false;
  }
}
