/**
 * The file-system backend: one host folder behind a Confinement. Copies, moves and removals use fs-extra;
 * PUT writes a temporary file in the target directory and renames it over the target, so a reader never sees a
 * half-written file and an aborted upload leaves the old one. Metadata calls go through `Io` (inline or
 * thread pool, see io.ts); listings go through the MetaCache when there is one.
 */
import fs, { constants as C, createWriteStream, type Stats } from 'node:fs';
import { link, mkdir, readdir, readlink, rmdir, unlink, utimes, statfs, lstat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Transform, type Readable } from 'node:stream';
import { basename, dirname } from 'node:path';
import { DavError, conflict, forbidden, fsError, notFound } from '../errors.js';
import { childOf, TEMP_NAME, tempNameOf, type Confinement, type DavPath, type Resolved } from '../paths.js';
import { dirIdentity, type MetaCache } from '../cache.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { bulkRead, type Io } from './io.js';
import { UploadMemory } from './upload-memory.js';
import { BodyDigests } from './body-digests.js';
import { requireCjs } from '../../src/require-cjs.js';
import type { CommitOptions, Entry, MemberFailure, PendingWrite, ReadHandle, Space, Storage } from './backend.js';

/** Strong ETag from inode, size and modification time (µs): changes whenever the content can have. */
export function etagOf(st: Stats): string {
  return `"${st.ino.toString(16)}-${st.size.toString(16)}-${Math.round(st.mtimeMs * 1000).toString(16)}"`;
}

/** Build an Entry from fs.Stats. */
export function entryOf(path: DavPath, st: Stats): Entry {
  const dir = st.isDirectory();
  return {
    path,
    collection: dir,
    size: dir ? 0 : st.size,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    atimeMs: st.atimeMs,
    birthtimeMs: st.birthtimeMs > 0 ? st.birthtimeMs : st.ctimeMs,
    mode: st.mode,
    etag: etagOf(st),
  };
}

/**
 * fs-extra, loaded on first use: it patches fs through graceful-fs and costs several MB of resident memory,
 * which a server that only reads and writes files never needs.
 */
const fsExtra = (): typeof import('fs-extra') => requireCjs('fs-extra') as typeof import('fs-extra');

/** Bodies up to this size are gathered in memory and written with one call (no stream set-up). */
const SMALL_BODY = 64 * 1024;
/** Members stat'ed per batch while listing; between batches the event loop gets a turn. */
const LIST_BATCH = 256;

/** Options of the file-system backend. */
export interface FsStorageOptions {
  io: Io;
  cache: MetaCache | null;
  log?: Logger;
}

/**
 * A temporary older than this that no request of this server is writing was left by a process that died (a
 * crash, kill -9, power loss) mid-upload or mid-copy: listing its directory removes it.
 */
export const STALE_TEMP_MS = 24 * 3600 * 1000;

/** Storage over a real directory. See `Storage` for the error contract. */
export class FsStorage implements Storage {
  readonly #conf: Confinement;
  readonly #io: Io;
  readonly #cache: MetaCache | null;
  // With the 'never' policy a file is opened with O_NOFOLLOW too, so a link swapped in after the check is not
  // followed either.
  readonly #noFollow: number;
  readonly #log: Logger;
  /** Temporaries this server is writing now: never swept, whatever their age. */
  readonly #active = new Set<string>();
  /** Names already reported as not valid UTF-8 (each is said once, up to a bound). */
  readonly #undecodable = new Set<string>();

  constructor(confinement: Confinement, options: FsStorageOptions) {
    this.#conf = confinement;
    this.#io = options.io;
    this.#cache = options.cache;
    this.#log = options.log ?? silentLogger;
    this.#noFollow = confinement.policy === 'never' ? C.O_NOFOLLOW : 0;
  }

  /**
   * Resolve a path the request acts on: devices, FIFOs and sockets are refused here (403), from the stats
   * resolving took, for every method at once. They are not served: a FIFO would block an open, a socket
   * cannot be opened at all.
   */
  async #resolve(path: DavPath): Promise<Resolved> {
    const r = await this.#conf.resolve(path);
    if (r.stats && !servable(r.stats)) throw special(path);
    return r;
  }

  async stat(path: DavPath): Promise<Entry | null> {
    const r = await this.#resolve(path);
    return r.exists && r.stats ? entryOf(path, r.stats) : null;
  }

  async list(path: DavPath): Promise<Entry[]> {
    const r = await this.#conf.resolve(path);
    if (!r.exists) throw notFound(path);
    const dir = r.target;
    const id = r.stats ? dirIdentity(r.stats) : undefined;
    const epoch = this.#cache?.epoch(dir, id) ?? -1;
    const cached = await this.#cache?.listing(dir);
    let names: string[];
    if (cached?.listing.complete) names = [...cached.listing.members.keys()];
    else {
      try {
        names = (await this.#io.readdir(dir)).map((d) => d.name);
      } catch (err) {
        throw fsError(err, path);
      }
    }
    const members = new Map<string, Entry | false>();
    const base = dir === '/' ? '' : dir;
    const look = async (name: string) => {
      const prior = cached?.listing.members.get(name);
      if (prior === false || (prior && !prior.collection)) {
        members.set(name, prior && prior.path !== childOf(path, name) ? { ...prior, path: childOf(path, name) } : prior);
        return;
      }
      members.set(name, await this.#member(path, `${base}/${name}`, name));
    };
    for (let i = 0; i < names.length; i += LIST_BATCH) {
      if (i > 0 && this.#io.inline) await yieldToLoop();
      await Promise.all(names.slice(i, i + LIST_BATCH).map(look));
    }
    if (this.#cache) {
      if (epoch < 0) this.#cache.watch(dir, id);
      // Not awaited: the answer is ready now; storing waits for a barrier (see MetaCache.store).
      else void this.#cache.store(dir, epoch, { members: new Map(members), complete: true });
    }
    const out: Entry[] = [];
    for (const e of members.values()) if (e) out.push(e);
    return out;
  }

  /** Stat one member for a listing; false when it is hidden (temporary, special file, link the policy refuses, gone). */
  async #member(parent: DavPath, real: string, name: string): Promise<Entry | false> {
    if (TEMP_NAME.test(name)) {
      this.#sweepIfStale(real);
      return false;
    }
    try {
      let st = await this.#io.lstat(real);
      if (st.isSymbolicLink()) {
        if (this.#conf.policy === 'never') return false;
        const target = await this.#io.realpath(real);
        if (!this.#conf.contains(target)) return false;
        st = await this.#io.stat(target);
      }
      return servable(st) ? entryOf(childOf(parent, name), st) : false;
    } catch (err) {
      // Node reads a name that is not valid UTF-8 with U+FFFD in place of the bad bytes, so it no longer names
      // the file: such a file cannot be listed or served (a URL carries UTF-8). Say so, or it just seems lost.
      if (name.includes('\uFFFD') && (err as NodeJS.ErrnoException).code === 'ENOENT') this.#reportUndecodable(real);
      return false;
    }
  }

  #reportUndecodable(real: string): void {
    if (this.#undecodable.has(real) || this.#undecodable.size >= 1000) return;
    this.#undecodable.add(real);
    this.#log.warn({ path: real }, 'a file name that is not valid UTF-8 cannot be shared (U+FFFD marks the bad bytes); rename it to see it in the guest');
  }

  /** Remove a temporary a dead process left behind (see STALE_TEMP_MS), in the background. */
  #sweepIfStale(real: string): void {
    if (this.#active.has(real)) return;
    void (async () => {
      const st = await lstat(real);
      if (Date.now() - st.mtimeMs < STALE_TEMP_MS || this.#active.has(real)) return;
      await fsExtra().remove(real);
      this.#log.info({ path: real, bytes: st.isFile() ? st.size : undefined }, 'removed a temporary file left by an interrupted upload or copy');
    })().catch(() => {});
  }

  /** A new temporary beside `path`, registered as in use until {@link #release}. */
  #temp(path: string): string {
    const t = tempPath(path);
    this.#active.add(t);
    return t;
  }

  #release(temp: string): void {
    this.#active.delete(temp);
  }

  async openRead(path: DavPath): Promise<ReadHandle | { entry: Entry; collection: true }> {
    const r = await this.#resolve(path);
    if (!r.exists) throw notFound(path);
    const io = this.#io;
    let fd: number;
    try {
      // O_NONBLOCK: opening a FIFO that slipped in since must not hang. A socket cannot be opened at all (ENXIO).
      fd = await io.open(r.target, C.O_RDONLY | C.O_NONBLOCK | this.#noFollow);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENXIO') throw special(path);
      throw fsError(err, path);
    }
    let st: Stats;
    try {
      st = await io.fstat(fd);
    } catch (err) {
      await io.close(fd);
      throw fsError(err, path);
    }
    if (!st.isFile()) {
      await io.close(fd);
      if (st.isDirectory()) return { entry: entryOf(path, st), collection: true };
      throw special(path);
    }
    return {
      entry: entryOf(path, st),
      read: (buf, length, position) => bulkRead(fd, buf, 0, length, position),
      readAll: async () => {
        const buf = Buffer.allocUnsafe(st.size);
        let off = 0;
        while (off < st.size) {
          const n = await io.read(fd, buf, off, st.size - off, off);
          if (n === 0) break;
          off += n;
        }
        return off === st.size ? buf : buf.subarray(0, off);
      },
      close: () => io.close(fd),
    };
  }

  async prepareWrite(path: DavPath): Promise<PendingWrite> {
    const r = await this.#resolve(path);
    const st = r.exists ? r.stats : undefined;
    if (st?.isDirectory()) throw new DavError(405, 'DAV_ERR_IS_COLLECTION', `${path} is a collection; PUT needs a file name`);
    if (!r.exists && !r.parentIsDir) throw conflict(`the parent collection of ${path} does not exist; MKCOL it first`);
    if (st) await this.#mayReplace(r.target, path);
    return {
      existing: st ? entryOf(path, st) : null,
      commit: (body, options) => this.#commit(path, r.target, st ? { mode: st.mode & 0o7777, size: st.size } : null, body, options),
    };
  }

  /**
   * 403 unless this process may write the file at `target`. Replacing it by rename(2) needs only the folder's
   * permission: without this check a file the host made read-only (chmod a-w) would be replaced by PUT or COPY,
   * where writing into it (cp, an editor, Samba) is refused. Root may, as it may write it. MOVE is mv: not checked.
   */
  async #mayReplace(target: string, path: DavPath): Promise<void> {
    await this.#io.access(target, C.W_OK).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EACCES' && err.code !== 'EPERM') throw fsError(err, path);
      throw new DavError(403, 'DAV_ERR_FORBIDDEN', `${path} is read-only on the host (${err.code}): it was not replaced`, { cause: err });
    });
  }

  async #commit(
    path: DavPath,
    target: string,
    old: { mode: number; size: number } | null,
    body: Readable,
    options: CommitOptions,
  ): Promise<{ created: boolean; entry: Entry }> {
    const io = this.#io;
    const tmp = this.#temp(target);
    let fd: number | null = null;
    try {
      fd = await io.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, old?.mode ?? 0o666);
      const digests = BodyDigests.of(options.checksums);
      let total = 0;
      const count = (n: number) => {
        total += n;
        if (total > options.maxBytes) throw new DavError(413, 'DAV_ERR_TOO_LARGE', `the upload exceeds the limit of ${options.maxBytes} bytes`);
        options.onBytes?.(n);
      };
      if (options.declaredLength !== undefined && options.declaredLength <= SMALL_BODY) {
        const buf = await readSmall(body, count);
        digests?.update(buf);
        for (let off = 0; off < buf.length; ) off += await io.write(fd, buf, off, buf.length - off, off);
      } else {
        const memory = new UploadMemory();
        const counter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            try {
              count(chunk.length);
              memory.add(chunk.length);
              digests?.update(chunk);
              cb(null, chunk);
            } catch (err) {
              cb(err as Error);
            }
          },
        });
        // 1 MiB in flight to the disk: 256 KiB cost 40 % of a local PUT's speed for 4 MiB less memory. The stream
        // "closes" with FD_STAYS_OPEN once its last write is done, and pipeline() settles only then.
        await pipeline(body, counter, createWriteStream('', { fd, fs: FD_STAYS_OPEN, highWaterMark: 1024 * 1024 }));
      }
      digests?.verify(path);
      // The new file keeps the old one's permissions exactly (open's mode is filtered by the umask).
      if (old !== null) await io.fchmod(fd, old.mode);
      if (options.mtime !== undefined) await io.futimes(fd, Date.now() / 1000, options.mtime);
      const st = await io.fstat(fd);
      // The file stays open until it has its name: if the host moves the folder meanwhile, the descriptor is
      // what still finds the temporary (see #removeMoved).
      if (options.expect?.etag === null) await this.#placeNew(tmp, target, path);
      else {
        if (options.expect !== undefined) await this.#checkUnchanged(target, options.expect.etag, path);
        await io.rename(tmp, target, old?.size);
      }
      const closing = fd;
      fd = null;
      await io.close(closing);
      return { created: old === null, entry: entryOf(path, st) };
    } catch (err) {
      if (fd !== null) {
        await this.#removeMoved(fd, tmp);
        await io.close(fd).catch(() => {});
      }
      await io.unlink(tmp).catch(() => {});
      // The folder was there when the upload began: now it has been moved or deleted on the host.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw folderGone(path, 'upload');
      throw fsError(err, path);
    } finally {
      this.#release(tmp);
    }
  }

  /**
   * Remove the temporary open on `fd` if it is no longer at `tmp`: the host moved its folder during the upload
   * (a user reorganising folders while the guest copies), which took the temporary along, where no unlink of
   * `tmp` finds it, and it would lie there, hidden, until the stale-temporary sweep a day later. Linux says where
   * an open file is now (/proc/self/fd); elsewhere the sweep stays the way out. Only a file of our temporary's
   * name inside the share is removed.
   */
  async #removeMoved(fd: number, tmp: string): Promise<void> {
    const now = await this.#whereNow(fd);
    if (now === null || now === tmp || basename(now) !== basename(tmp)) return;
    await this.#io.unlink(now).catch(() => {});
  }

  /**
   * Remove a copy's temporary (file or tree), and where it went if the folder it was made in, open on `folder`,
   * was moved meanwhile: the temporary travelled with it (see #removeMoved for the upload's case).
   */
  async #discardCopy(tmp: string, folder: number | null): Promise<void> {
    await discard(tmp);
    const now = folder === null ? null : await this.#whereNow(folder);
    if (now !== null && now !== dirname(tmp)) await discard(`${now}/${basename(tmp)}`);
  }

  /** Where the file or folder open on `fd` is now, when Linux says (/proc/self/fd) and it is inside the share. */
  async #whereNow(fd: number): Promise<string | null> {
    if (process.platform !== 'linux') return null;
    const now = await readlink(`/proc/self/fd/${fd}`).catch(() => null);
    return now !== null && this.#conf.contains(now) ? now : null;
  }

  /**
   * 412 unless the file at `target` still has ETag `etag`, or is still absent for `null` (the window left is the
   * instant before the rename).
   */
  async #checkUnchanged(target: string, etag: string | null, path: DavPath): Promise<void> {
    let now: string | null;
    try {
      now = etagOf(await this.#io.lstat(target));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      now = null;
    }
    if (now !== etag) throw changedMeanwhile(path);
  }

  /**
   * Give the finished upload `tmp` the name `target` only if nothing has it: link() fails if a file appeared
   * meanwhile, where rename would replace it. A file system without hard links (FAT and exFAT: EPERM on Linux,
   * ENOTSUP on macOS) gets the check then the rename instead, with the window of an ETag-conditional PUT.
   */
  async #placeNew(tmp: string, target: string, path: DavPath): Promise<void> {
    try {
      await link(tmp, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'EEXIST') throw changedMeanwhile(path);
      if (!NO_HARD_LINKS.has(code)) throw err;
      await this.#checkUnchanged(target, null, path);
      await this.#io.rename(tmp, target, 0);
      return;
    }
    await this.#io.unlink(tmp, 0); // the file keeps its new name: nothing is freed
  }

  async createEmpty(path: DavPath): Promise<boolean> {
    const r = await this.#resolve(path);
    if (r.exists) return false;
    if (!r.parentIsDir) throw conflict(`the parent collection of ${path} does not exist`);
    try {
      await this.#io.close(await this.#io.open(r.target, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o666));
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
      // A file (or a link) is one unlink; trees go to fs-extra.
      const st = await this.#io.lstat(r.entry);
      if (st.isDirectory()) await fsExtra().remove(r.entry);
      else await this.#io.unlink(r.entry, st.size);
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

  async copy(from: DavPath, to: DavPath, depth: 0 | 'infinity', replace: boolean): Promise<MemberFailure[]> {
    const src = await this.#conf.resolve(from);
    if (!src.exists) throw notFound(from);
    const dst = await this.#destination(src, to, replace);
    if (dst.kin === 'spelling') throw forbidden(`${to} is ${from} itself: the host's file system ignores case`);
    if (dst.exists && dst.stats?.isFile()) await this.#mayReplace(dst.entry, to);
    // Resolving took the source's stats (through an allowed link, the target's): no second stat.
    return this.#copyAside(src.target, src.stats?.isDirectory() ?? false, depth, dst, to, 'copy');
  }

  /**
   * Copy `source` under a temporary name beside the destination, and put it in place only once complete: a copy
   * that fails (a full disk, an unreadable member, its folder moved away) leaves the destination as it was, and
   * nothing partial. COPY does this, and so does a MOVE across file systems.
   */
  async #copyAside(source: string, collection: boolean, depth: 0 | 'infinity', dst: Resolved, to: DavPath, during: CopyKind): Promise<MemberFailure[]> {
    const tmp = this.#temp(dst.entry);
    // Held so that a temporary the host (or another request) moves away with its folder is still found.
    const folder = await this.#io.open(dirname(tmp), C.O_RDONLY | C.O_DIRECTORY).catch(() => null);
    try {
      try {
        if (collection && depth === 0) await mkdir(tmp);
        else await fsExtra().copy(source, tmp, COPY_OPTIONS);
      } catch (err) {
        // Not found, and the temporary is not where it was made either: its folder moved, not the source.
        const moved = (err as NodeJS.ErrnoException).code === 'ENOENT' && !(await lstat(tmp).then(() => true, () => false));
        await this.#discardCopy(tmp, folder);
        throw moved ? folderGone(to, during) : treeError(err, to);
      }
      return await this.#install(tmp, collection, dst, to, folder, during);
    } finally {
      this.#release(tmp);
      if (folder !== null) await this.#io.close(folder).catch(() => {});
    }
  }

  async move(from: DavPath, to: DavPath, replace: boolean): Promise<MemberFailure[]> {
    const src = await this.#conf.resolve(from);
    if (!src.exists) throw notFound(from);
    const dst = await this.#destination(src, to, replace);
    try {
      if (dst.kin === 'spelling') {
        await this.#respell(src.entry, dst.entry);
        return [];
      }
      if (dst.kin === 'hard link') {
        // The destination already is the file (rename(2) between two links of one file does nothing).
        await this.#io.unlink(src.entry, 0);
        return [];
      }
      if (dst.exists && !src.stats?.isDirectory() && !dst.stats?.isDirectory()) {
        // A file over a file: rename replaces it in one step. Across file systems (a mount inside the share)
        // the file is copied beside the destination first, so a failed copy leaves the destination whole.
        try {
          await this.#io.rename(src.entry, dst.entry, dst.stats?.size);
          return [];
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        }
        await this.#copyAside(src.entry, false, 'infinity', dst, to, 'move');
        await this.#io.unlink(src.entry, src.stats?.size);
        return [];
      }
      // A collection on either side: RFC 4918 §9.9.3's order, the destination deleted first (what cannot be
      // deleted is reported, and nothing is moved), then one rename (a copy and delete across file systems).
      if (dst.exists) {
        const failures = await this.remove(to);
        if (failures.length) return failures;
      }
      await fsExtra().move(src.entry, dst.target, { overwrite: false });
      return [];
    } catch (err) {
      throw treeError(err, to);
    }
  }

  async setTimes(path: DavPath, times: { atimeMs?: number; mtimeMs?: number }): Promise<void> {
    const r = await this.#conf.resolve(path);
    if (!r.exists) throw notFound(path);
    try {
      const st = await this.#io.stat(r.target);
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

  /**
   * Resolve a COPY/MOVE destination: 412 when it exists and may not be replaced, 409 without a parent collection;
   * neither when it is the source itself under another spelling (`kin` says which relation it has, if any).
   */
  async #destination(src: Resolved, to: DavPath, replace: boolean): Promise<Resolved & { kin: Kinship }> {
    const dst = await this.#conf.resolve(to);
    const kin = dst.exists ? await this.#kinship(src.entry, dst.entry) : null;
    if (kin === 'spelling') return { ...dst, kin };
    if (dst.exists && !replace) throw new DavError(412, 'DAV_ERR_EXISTS', `${to} already exists`);
    if (!dst.exists && !dst.parentIsDir) throw conflict(`the parent collection of ${to} does not exist`);
    return { ...dst, kin };
  }

  /**
   * How an existing destination entry `b` relates to the source entry `a`. A file system that ignores case
   * (macOS, Windows, a FAT or exFAT stick, a casefold folder) finds `photos` when asked for `Photos`: then `b` is
   * another spelling of `a`'s very entry, and replacing it the usual way, deleting it first, would delete the
   * source. Hard links are two entries of one file. Entries are compared, not link targets (a link and the file
   * it points to are two entries), and only a spelling no directory entry has exactly is a spelling of another.
   * A path-based FUSE file system (exfat-fuse) numbers each spelling apart: there the name, but for case, tells.
   */
  async #kinship(a: string, b: string): Promise<Kinship> {
    try {
      const [sa, sb] = await Promise.all([this.#io.lstat(a), this.#io.lstat(b)]);
      const sameFile = sa.dev === sb.dev && sa.ino === sb.ino;
      const dir = dirname(b);
      if (!sameFile && (dirname(a) !== dir || foldCase(a) !== foldCase(b))) return null;
      const name = b.slice(dir.length + 1);
      if (!(await this.#io.readdir(dir)).some((d) => d.name === name)) return 'spelling';
      return sameFile ? 'hard link' : null;
    } catch {
      return null;
    }
  }

  /**
   * MOVE onto another spelling of the source's own entry. One rename(2) cannot do it everywhere: Linux takes a
   * change of case only, in a casefold or FAT directory, for a rename onto itself and does nothing. So the entry
   * goes to a fresh name beside it, then to the destination's. The fresh name is not a temporary's: if the
   * server stops in between, the data stays under it, visible and never swept.
   */
  async #respell(from: string, to: string): Promise<void> {
    const between = `${dirname(from)}/.spicedav-${nextTempId()}.respelling`;
    await this.#io.rename(from, between);
    try {
      await this.#io.rename(between, to);
    } catch (err) {
      await this.#io.rename(between, from).catch(() => {});
      throw err;
    }
  }

  /**
   * Put a finished copy (at `tmp`, beside the destination; `collection` when it is one) in the destination's
   * place. A file replaces a file in one rename; anything else replaces a collection (or a file by a collection)
   * by deleting the old one first, and when that fails for some members they are reported, the copy is
   * discarded, and nothing is installed.
   */
  async #install(tmp: string, collection: boolean, dst: Resolved, to: DavPath, folder: number | null, during: CopyKind): Promise<MemberFailure[]> {
    try {
      if (dst.exists && (collection || dst.stats?.isDirectory())) {
        const failures = await this.remove(to);
        if (failures.length) {
          await this.#discardCopy(tmp, folder);
          return failures;
        }
      }
      // A collection it replaces is gone by now; a file is freed by the rename.
      await this.#io.rename(tmp, dst.entry, dst.stats?.isFile() ? dst.stats.size : 0);
      return [];
    } catch (err) {
      await this.#discardCopy(tmp, folder);
      // The folder was there when the copy began (the destination's parent is checked first).
      throw (err as NodeJS.ErrnoException).code === 'ENOENT' ? folderGone(to, during) : fsError(err, to);
    }
  }
}

/**
 * How COPY and a MOVE across file systems copy: links as links, nothing replaced (the copy goes to a fresh
 * temporary), timestamps kept. What listings hide is left out: temporaries of uploads in progress, and special
 * files (FIFOs, sockets, devices), which fs-extra refuses to copy, so one socket an application left in a
 * folder made the whole COPY fail. A member gone by the time it is reached is left out too.
 */
const COPY_OPTIONS = {
  dereference: false,
  errorOnExist: true,
  overwrite: false,
  preserveTimestamps: true,
  filter: async (p: string): Promise<boolean> => {
    if (TEMP_NAME.test(p.slice(p.lastIndexOf('/') + 1))) return false;
    const st = await lstat(p).catch(() => null);
    return st !== null && (servable(st) || st.isSymbolicLink());
  },
};

/**
 * fs-extra checks the paths again before it moves or copies, and reports what it finds with a plain Error, no
 * code. Our checks came first and passed, so each of these means the tree changed in between: the host or another
 * request made, moved or removed something there. That is a conflict to report (409), not an I/O fault (500).
 */
const FS_EXTRA_CHECKS = /^(dest already exists\.|'.*' already exists|Source and destination must not be the same\.|Cannot overwrite |Cannot (move|copy) '.*' to a subdirectory of itself)/;

/** fsError, knowing fs-extra's code-less path checks (above). */
function treeError(err: unknown, path: DavPath): DavError {
  if (err instanceof Error && (err as NodeJS.ErrnoException).code === undefined && FS_EXTRA_CHECKS.test(err.message)) {
    return new DavError(409, 'DAV_ERR_CONFLICT', `${path} changed on the host while the request ran (${err.message}); nothing was replaced`, { cause: err });
  }
  return fsError(err, path);
}

/** What made a copy beside its destination: a COPY, or a MOVE across file systems (see #copyAside). */
type CopyKind = 'copy' | 'move';

/** 409: the folder a write goes to was there when it began, and has been moved or deleted since. */
function folderGone(path: DavPath, during: 'upload' | CopyKind): DavError {
  return conflict(`the folder of ${path} was moved or deleted on the host during the ${during}; nothing was stored`);
}

/** Remove a temporary copy that will not be installed; a failure leaves it for the stale-temporary sweep. */
async function discard(tmp: string): Promise<void> {
  await fsExtra()
    .remove(tmp)
    .catch(() => {});
}

function changedMeanwhile(path: DavPath): DavError {
  return new DavError(412, 'DAV_ERR_CHANGED_MEANWHILE', `${path} changed on the host while the upload was arriving; its conditions no longer hold, so nothing was replaced`);
}

/** What the share serves: files and directories (not devices, FIFOs or sockets). */
function servable(st: Stats): boolean {
  return st.isFile() || st.isDirectory();
}

function special(path: DavPath): DavError {
  return new DavError(403, 'DAV_ERR_SPECIAL_FILE', `${path} is not a regular file or directory (device, FIFO or socket) and is not served`);
}

/** Gather a small body whole (its size was declared): one buffer, one write. */
function readSmall(body: Readable, count: (n: number) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const fail = (err: Error) => {
      body.off('data', onData);
      reject(err);
    };
    const onData = (c: Buffer) => {
      try {
        count(c.length);
      } catch (err) {
        fail(err as Error);
        return;
      }
      chunks.push(c);
      n += c.length;
    };
    body.on('data', onData);
    body.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, n)));
    body.once('error', fail);
    // An IncomingMessage whose connection dies emits 'aborted'/'close' without 'end', and may have done so already,
    // while the temporary file was being created on a slow disk: then no event is coming.
    const cut = () => {
      if (!body.readableEnded) fail(new DavError(400, 'DAV_ERR_BODY_CUT', 'the connection closed before the whole body arrived'));
    };
    if (body.destroyed) cut();
    else body.once('close', cut);
  });
}

/**
 * The file system a commit's WriteStream uses: Node's, except that closing does nothing, because the descriptor
 * is #commit's to close, once. A destroyed WriteStream closes its fd even with `autoClose: false`, and pipeline()
 * destroys it when the upload is cut: #commit's own close was then a second one, and by then the number could
 * belong to a file another request had just opened, which that close took from it (its GET failed with EBADF),
 * or handed on to the next open (a GET answered with another file's bytes). Found by `npm run bench:soak`.
 */
const FD_STAYS_OPEN = {
  // No `open`: the stream is given its fd, so it never opens one.
  write: fs.write,
  writev: fs.writev,
  close: (_fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => cb(null),
};

/** Temporary names: a random per-process prefix and a counter (O_EXCL catches the impossible collision). */
const tempPrefix = randomBytes(4).toString('hex');
let tempCounter = 0;

/** A fresh 16-hex-digit id for a temporary name. */
function nextTempId(): string {
  return tempPrefix + (tempCounter++ >>> 0).toString(16).padStart(8, '0');
}

/** A temporary in the same directory as `path` (TEMP_NAME: hidden from listings, skipped by copies). */
function tempPath(path: string): string {
  return `${dirname(path)}/${tempNameOf(nextTempId())}`;
}

/** How link(2) says the file system has no hard links (Windows maps FAT's ERROR_INVALID_FUNCTION to EISDIR). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK', ...(process.platform === 'win32' ? ['EISDIR'] : [])]);

/** What an existing COPY/MOVE destination is to the source besides another resource (see FsStorage#kinship). */
type Kinship = 'spelling' | 'hard link' | null;

/** A name as a file system that ignores case compares it (closely enough to confirm what it already found). */
function foldCase(path: string): string {
  return path.normalize('NFC').toLowerCase();
}

/** Depth-first removal that keeps going past failures, recording the members that stay. */
async function removeWalk(real: string, path: DavPath, failures: MemberFailure[]): Promise<boolean> {
  let isDir = false;
  try {
    isDir = (await lstat(real)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    failures.push({ path, error: fsError(err, path) });
    return false;
  }
  try {
    if (!isDir) {
      await unlink(real);
      return true;
    }
    let all = true;
    for (const n of await readdir(real)) all = (await removeWalk(`${real}/${n}`, childOf(path, n), failures)) && all;
    if (!all) return false; // RFC 4918 §9.6.1: the ancestors of a failed member are not reported.
    await rmdir(real);
    return true;
  } catch (err) {
    failures.push({ path, error: fsError(err, path) });
    return false;
  }
}
