/**
 * The file-system calls the storage makes (and the state journals, `journal/`), in one of two modes chosen per
 * share (per state directory for the journals):
 *
 * - async: Node's thread pool. Right for network and FUSE file systems, where one call can take milliseconds.
 * - inline: the synchronous call, made directly. On a local file system with metadata in the page cache a
 *   stat or open takes a few microseconds, while a thread-pool round trip costs 20–50 µs plus a promise and a
 *   GC'd object; measured here, 2,000 sequential small GETs ran 4–6× faster inline. The price is blocking the
 *   event loop for the duration of the call, so the gate times every inline call and, when three within ten
 *   seconds take longer than `maxMs` (a cold disk, a stalled device), switches to async for `cooldownMs`. A
 *   single slow call (a journal commit on ext4 stalls a file creation now and then) does not count.
 *
 * Inline is the default only on file systems known to be local (ext2/3/4, xfs, btrfs, tmpfs, f2fs, zfs,
 * overlay, bcachefs); NFS, SMB, FUSE (virtiofs, sshfs) and unknown types stay async.
 *
 * One kind of call is slow on a healthy local disk: an unlink, or a rename over an existing file, frees the old
 * file's blocks and page cache inside the call, which took 300 ms (unlink) and 220 ms (rename) for a 1 GiB file
 * on this project's ext4 machine. Callers pass the size of the file the call frees, and above FREE_INLINE_MAX it
 * goes to the thread pool: it does not hold up every other request, and it is not taken for a slow disk (three of
 * them used to switch a share to the thread pool for a minute: the DELETEs between 1 GiB uploads did).
 */
import fs, { type BigIntStats, type Dirent, type Stats } from 'node:fs';
import type { Logger } from '../../src/log.js';

/** statfs f_type magic numbers of local file systems (linux/magic.h). */
const LOCAL_FS = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994, 0xf2f52010, 0x2fc12fc1, 0x794c7630, 0xca451a4e]);

/** True when `dir` sits on a file system known to be local (see LOCAL_FS). */
export function isLocalFileSystem(dir: string): boolean {
  try {
    return LOCAL_FS.has(fs.statfsSync(dir).type);
  } catch {
    return false;
  }
}

/** The calls storage and confinement make. Every call returns a promise in both modes. */
export interface Io {
  realpath(p: string): Promise<string>;
  stat(p: string): Promise<Stats>;
  lstat(p: string): Promise<Stats>;
  readdir(p: string): Promise<Dirent[]>;
  open(p: string, flags: number, mode?: number): Promise<number>;
  fstat(fd: number): Promise<Stats>;
  read(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** `position` null: at the file's offset (the end, for a file opened O_APPEND). */
  write(fd: number, buf: Buffer, offset: number, length: number, position: number | null): Promise<number>;
  close(fd: number): Promise<void>;
  /** `replaced`: the size of the file `to` names now, when there is one (see FREE_INLINE_MAX). */
  rename(from: string, to: string, replaced?: number): Promise<void>;
  /** `size`: the file's size, when the caller knows it (see FREE_INLINE_MAX); unknown counts as large. */
  unlink(p: string, size?: number): Promise<void>;
  fchmod(fd: number, mode: number): Promise<void>;
  /** access(2): rejects (EACCES, EPERM...) unless this process may access `p` as `mode` asks (fs.constants.W_OK...). */
  access(p: string, mode: number): Promise<void>;
  /** Set a file's access and modification times (seconds since the epoch; fractions allowed). */
  futimes(fd: number, atime: number, mtime: number): Promise<void>;
  /** The calls below serve the state journals (`journal/`), which need exact inode numbers (hence bigint). */
  statBig(p: string): Promise<BigIntStats>;
  fstatBig(fd: number): Promise<BigIntStats>;
  /** mkdir -p with this mode for what it makes. */
  mkdirs(p: string, mode: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  symlink(target: string, p: string): Promise<void>;
  readlink(p: string): Promise<string>;
  /** True while calls run inline (for callers that batch work differently, e.g. yielding between stats). */
  readonly inline: boolean;
}

const promisify =
  <A extends unknown[], R>(f: (...args: [...A, (err: NodeJS.ErrnoException | null, r: R) => void]) => void) =>
  (...args: A): Promise<R> =>
    new Promise<R>((resolve, reject) => f(...args, (err, r) => (err ? reject(err) : resolve(r))));

const asyncIo = {
  realpath: promisify<[string], string>((p, cb) => fs.realpath.native(p, cb)),
  stat: promisify<[string], Stats>((p, cb) => fs.stat(p, cb)),
  lstat: promisify<[string], Stats>((p, cb) => fs.lstat(p, cb)),
  readdir: promisify<[string], Dirent[]>((p, cb) => fs.readdir(p, { withFileTypes: true }, cb)),
  open: promisify<[string, number, number | undefined], number>((p, f, m, cb) => fs.open(p, f, m ?? 0o666, cb)),
  fstat: promisify<[number], Stats>((fd, cb) => fs.fstat(fd, cb)),
  read: promisify<[number, Buffer, number, number, number], number>((fd, b, o, l, p, cb) => fs.read(fd, b, o, l, p, cb)),
  write: promisify<[number, Buffer, number, number, number | null], number>((fd, b, o, l, p, cb) => fs.write(fd, b, o, l, p, cb)),
  close: promisify<[number], void>((fd, cb) => fs.close(fd, (err) => cb(err, undefined))),
  rename: promisify<[string, string], void>((a, b, cb) => fs.rename(a, b, (err) => cb(err, undefined))),
  unlink: promisify<[string], void>((p, cb) => fs.unlink(p, (err) => cb(err, undefined))),
  fchmod: promisify<[number, number], void>((fd, m, cb) => fs.fchmod(fd, m, (err) => cb(err, undefined))),
  access: promisify<[string, number], void>((p, m, cb) => fs.access(p, m, (err) => cb(err, undefined))),
  futimes: promisify<[number, number, number], void>((fd, a, m, cb) => fs.futimes(fd, a, m, (err) => cb(err, undefined))),
  statBig: promisify<[string], BigIntStats>((p, cb) => fs.stat(p, { bigint: true }, cb)),
  fstatBig: promisify<[number], BigIntStats>((fd, cb) => fs.fstat(fd, { bigint: true }, cb)),
  mkdirs: promisify<[string, number], void>((p, m, cb) => fs.mkdir(p, { recursive: true, mode: m }, (err) => cb(err, undefined))),
  ftruncate: promisify<[number, number], void>((fd, l, cb) => fs.ftruncate(fd, l, (err) => cb(err, undefined))),
  fsync: promisify<[number], void>((fd, cb) => fs.fsync(fd, (err) => cb(err, undefined))),
  symlink: promisify<[string, string], void>((t, p, cb) => fs.symlink(t, p, (err) => cb(err, undefined))),
  readlink: promisify<[string], string>((p, cb) => fs.readlink(p, cb)),
};

/**
 * Reads of file content for GET always go to the thread pool: they are large, may miss the page cache, and
 * overlap with the socket writes on the other core.
 */
export const bulkRead = asyncIo.read;

const syncIo = {
  realpath: (p: string) => fs.realpathSync.native(p),
  stat: (p: string) => fs.statSync(p),
  lstat: (p: string) => fs.lstatSync(p),
  readdir: (p: string) => fs.readdirSync(p, { withFileTypes: true }),
  open: (p: string, f: number, m?: number) => fs.openSync(p, f, m ?? 0o666),
  fstat: (fd: number) => fs.fstatSync(fd),
  read: (fd: number, b: Buffer, o: number, l: number, p: number) => fs.readSync(fd, b, o, l, p),
  write: (fd: number, b: Buffer, o: number, l: number, p: number | null) => fs.writeSync(fd, b, o, l, p),
  close: (fd: number) => fs.closeSync(fd),
  rename: (a: string, b: string) => fs.renameSync(a, b),
  unlink: (p: string) => fs.unlinkSync(p),
  fchmod: (fd: number, m: number) => fs.fchmodSync(fd, m),
  access: (p: string, m: number) => fs.accessSync(p, m),
  futimes: (fd: number, a: number, m: number) => fs.futimesSync(fd, a, m),
  statBig: (p: string) => fs.statSync(p, { bigint: true }),
  fstatBig: (fd: number) => fs.fstatSync(fd, { bigint: true }),
  mkdirs: (p: string, m: number) => void fs.mkdirSync(p, { recursive: true, mode: m }),
  ftruncate: (fd: number, l: number) => fs.ftruncateSync(fd, l),
  fsync: (fd: number) => fs.fsyncSync(fd),
  symlink: (t: string, p: string) => fs.symlinkSync(t, p),
  readlink: (p: string) => fs.readlinkSync(p),
};

/** The largest file an inline unlink or rename may free: about 1 ms of work (see the top of this file). */
export const FREE_INLINE_MAX = 4 * 1024 * 1024;

/** The argument of each call that names how many bytes it frees, for the calls that free a file. */
const FREES: Partial<Record<keyof typeof syncIo, number>> = { rename: 2, unlink: 1 };

/** Options of the inline gate. */
export interface InlineGateOptions {
  /** Make calls inline at all. */
  enabled: boolean;
  /** An inline call slower than this (ms) switches to async. */
  maxMs: number;
  /** How long (ms) to stay async after a slow call. */
  cooldownMs: number;
  log: Logger;
}

/** Create the Io for a share, inline or async per the gate described above. */
export function createIo(o: InlineGateOptions): Io {
  let asyncUntil = o.enabled ? 0 : Infinity;
  const slow: number[] = [];
  const inline = () => asyncUntil !== Infinity && (asyncUntil === 0 || performance.now() >= asyncUntil);
  const wrap = <K extends keyof typeof syncIo>(name: K) => {
    const s = syncIo[name] as (...a: unknown[]) => unknown;
    const a = asyncIo[name] as (...a: unknown[]) => Promise<unknown>;
    const frees = FREES[name];
    return (...args: unknown[]): Promise<unknown> => {
      if (frees !== undefined) {
        // An unlink of unknown size counts as large; a rename frees only what it replaces.
        const freed = (args[frees] as number | undefined) ?? (name === 'unlink' ? Infinity : 0);
        args.length = frees;
        if (freed > FREE_INLINE_MAX) return a(...args);
      }
      if (!inline()) return a(...args);
      const t0 = performance.now();
      try {
        return Promise.resolve(s(...args));
      } catch (err) {
        return Promise.reject(err);
      } finally {
        const ms = performance.now() - t0;
        if (ms > o.maxMs) {
          const now = performance.now();
          slow.push(now);
          while (slow.length && (slow[0] as number) < now - 10_000) slow.shift();
          if (slow.length >= 3) {
            slow.length = 0;
            asyncUntil = now + o.cooldownMs;
            o.log.info({ call: name, ms: Math.round(ms) }, 'file-system calls are slow; using the thread pool for a while');
          }
        }
      }
    };
  };
  const io = {} as Record<string, unknown>;
  for (const k of Object.keys(syncIo) as (keyof typeof syncIo)[]) io[k] = wrap(k);
  Object.defineProperty(io, 'inline', { get: inline });
  return io as unknown as Io;
}
