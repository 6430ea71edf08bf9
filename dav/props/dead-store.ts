/**
 * Dead properties, persisted outside the shared folder.
 *
 * Why not xattrs (what phodav does): Node has no xattr API, so it would need a native addon; many file systems
 * a user may share (vfat, exFAT, some network mounts, tmpfs without user xattrs) have none, and phodav then
 * fails PROPPATCH with 404s. Why not sidecar files (what nephele does): they show up in the share, for the
 * guest and for the host user. So the store is one journal file per share under the state directory
 * (`$XDG_STATE_HOME/spicedav/` by default), never inside the share:
 *
 *   one JSON object per line:  {"p":"/a","set":[["{ns}name","<xml/>"]],"del":["{ns}name"]}
 *                              {"mv":["/a","/b"]}  {"cp":["/a","/b"]}  {"rm":"/a"}
 *
 * Every change is one appended line, so a PROPPATCH is all-or-nothing even across a crash (a torn last line is
 * ignored on replay). A line that could not be written whole (a full disk) is cut off again at once, so the next
 * line does not land after its torn half. Values are the property element serialised with its exact namespaces, any Unicode.
 * The journal is compacted into a snapshot when it grows to several times the live data.
 *
 * Several processes may serve one folder at once (two VMs sharing ~/Public, or `serve` beside `share`), so the
 * journal, not the memory of one process, is the truth: every process replays it, and before a reader answers from
 * it (`refresh`) it applies what the others appended since (one stat(2) when nothing changed). A writer holds the
 * journal's lock file (`journal-lock.ts`) while it catches up, appends its line and applies it in file order, so
 * every process sees the same changes in the same order; a compaction, which replaces the file, happens under the
 * lock too, and the others notice the new inode and replay it whole.
 */
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { statSync, type BigIntStats } from 'node:fs';
import { dirname } from 'node:path';
import { isWithin, type DavPath } from '../paths.js';
import { DavError } from '../errors.js';
import { isLocalFileSystem } from '../storage/io.js';
import { JournalLock, JournalLockBusyError, type JournalLockOptions } from './journal-lock.js';
import type { Logger } from '../../src/log.js';

/** A stored dead property: its namespace, local name and the serialised element (with its value). */
export interface DeadProp {
  ns: string;
  name: string;
  xml: string;
}

/** The key of a property in the store: `{namespace}name`. */
export const propKey = (ns: string, name: string): string => `{${ns}}${name}`;

/** Split a `{ns}name` key back into namespace and local name. */
export function splitKey(key: string): { ns: string; name: string } {
  const i = key.indexOf('}');
  return { ns: key.slice(1, i), name: key.slice(i + 1) };
}

type Op = { p: string; set?: [string, string][]; del?: string[] } | { mv: [string, string] } | { cp: [string, string] } | { rm: string };

/** How `DeadPropStore.open` opens a journal. */
export interface DeadPropStoreOptions {
  /** Only read what is there (a read-only share): no directory is made, no lock taken, nothing compacted. */
  readOnly?: boolean;
  /** How long a writer waits for another process's lock, and when a lock counts as abandoned. */
  lock?: JournalLockOptions;
}

/** The dead-property store: in memory, backed by an append-only journal when a file is given. */
export class DeadPropStore {
  readonly #props = new Map<DavPath, Map<string, string>>();
  readonly #file: string | null;
  readonly #log: Logger;
  readonly #readOnly: boolean;
  readonly #lock: JournalLock | null;
  /** The journal file #props replays (opened `a+`, or `r` when read-only), and its identity. */
  #fh: FileHandle | null = null;
  #dev = -1n;
  #ino = -1n;
  /** Bytes of the journal applied: up to the end of its last whole line. */
  #consumed = 0;
  /** Whole lines in those bytes, unreadable ones included: what compaction would save. */
  #lines = 0;
  #queue: Promise<unknown> = Promise.resolve();
  /** Tasks queued or running in #serial. */
  #pending = 0;
  /** The journal is on a local disk: `refresh` may stat it inline (a few µs, not a thread-pool round trip). */
  #statInline = false;
  #generation = 0;
  #refreshFailing = false;

  private constructor(file: string | null, log: Logger, readOnly: boolean, lock: JournalLockOptions | undefined) {
    this.#file = file;
    this.#log = log;
    this.#readOnly = readOnly;
    this.#lock = file && !readOnly ? new JournalLock(`${file}.lock`, lock) : null;
  }

  /**
   * Open (and replay) the store at `file`, or an in-memory store when `file` is null. A read-only store (for a
   * read-only share, which never changes a property) needs neither a writable state directory nor an existing one.
   */
  static async open(file: string | null, log: Logger, { readOnly = false, lock }: DeadPropStoreOptions = {}): Promise<DeadPropStore> {
    const store = new DeadPropStore(file, log, readOnly, lock);
    if (file) {
      await store.#catchUp();
      if (!readOnly) await store.#tidy();
      store.#statInline = isLocalFileSystem(dirname(file));
    }
    return store;
  }

  /** Bumped by every change: lets renderers reuse what they built while it is unchanged. */
  get generation(): number {
    return this.#generation;
  }

  /** The dead properties of a resource (key → serialised element), if any, as of the last `refresh` or change. */
  get(path: DavPath): ReadonlyMap<string, string> | undefined {
    return this.#props.get(path);
  }

  /**
   * Apply what other processes changed since the last look, before answering from `get`. A journal that cannot be
   * read is logged (once until it can be again) and the properties known so far are served.
   */
  refresh(): Promise<void> {
    if (!this.#file || (this.#pending === 0 && this.#statInline && this.#unchanged())) return Promise.resolve();
    return this.#serial(async () => {
      try {
        await this.#catchUp();
        this.#refreshFailing = false;
      } catch (err) {
        if (!this.#refreshFailing) this.#log.warn({ file: this.#file, err: (err as Error).message }, 'dead-property journal: cannot read what other processes wrote');
        this.#refreshFailing = true;
      }
    });
  }

  /** Whether the journal is as last read, by one inline stat(2): what every PROPFIND finds, but rarely. */
  #unchanged(): boolean {
    try {
      const now = statSync(this.#file as string, { bigint: true, throwIfNoEntry: false });
      return now ? this.#replays(now) && Number(now.size) === this.#consumed : this.#fh === null;
    } catch {
      return false; // the queued refresh meets the error and says so
    }
  }

  /** Set and remove properties of one resource in one atomic step. */
  patch(path: DavPath, set: DeadProp[], del: string[]): Promise<void> {
    // Nothing to store (a PROPPATCH of Win32 times only, applied to the file): no line, no lock.
    if (set.length === 0 && del.length === 0) return Promise.resolve();
    return this.#commit(() => ({ p: path, set: set.map((d) => [propKey(d.ns, d.name), d.xml]), del }));
  }

  /** Give `to` the properties `from` has (not those of its members: a COPY with Depth 0). */
  copyOwn(from: DavPath, to: DavPath): Promise<void> {
    return this.#commit(() => {
      const own = this.#props.get(from);
      return own ? { p: to, set: [...own] } : null;
    });
  }

  /** Copy the properties of `from` and everything below it to `to` (replacing what `to` had). */
  copyTree(from: DavPath, to: DavPath): Promise<void> {
    return this.#commit(() => this.#treeOp({ cp: [from, to] }));
  }

  /** Move the properties of `from` and everything below it to `to`. */
  moveTree(from: DavPath, to: DavPath): Promise<void> {
    return this.#commit(() => this.#treeOp({ mv: [from, to] }));
  }

  /** Forget the properties of `path` and everything below it. */
  removeTree(path: DavPath): Promise<void> {
    return this.#commit(() => this.#treeOp({ rm: path }));
  }

  /** Finish pending changes and close the journal. */
  async close(): Promise<void> {
    await this.#queue;
    await this.#fh?.close();
    this.#fh = null;
  }

  /** Runs `task` after everything queued before it: reads and changes of the journal never overlap in a process. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    this.#pending++;
    const p = this.#queue.then(task).finally(() => this.#pending--);
    this.#queue = p.catch(() => {});
    return p;
  }

  /**
   * One change: `build` makes its journal line from the properties as they are once every other process's changes
   * are in (null: nothing to change), under the lock, so no other writer comes between what it read and its line.
   */
  #commit(build: () => Op | null): Promise<void> {
    return this.#serial(async () => {
      if (!this.#file) {
        const op = build();
        if (op) this.#apply(op);
        return;
      }
      await this.#locked(async () => {
        await this.#catchUpLocked();
        const op = build();
        if (!op) return;
        const line = JSON.stringify(op) + '\n';
        await this.#append(line);
        // Under the lock nobody else writes: the line is the journal's new end, applied in its place.
        this.#consumed += Buffer.byteLength(line);
        this.#lines++;
        this.#apply(op);
        if (this.#lines > 1000 && this.#lines > 4 * this.#props.size) await this.#compactOrKeep();
      });
    }).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      // RFC 4918 §11.5: 507 when the server cannot store what the request needs, here the property.
      if (code === 'ENOSPC' || code === 'EDQUOT') throw new DavError(507, 'DAV_ERR_PROPSTORE_FULL', `no space left for the property store ${this.#file}`, { cause: err });
      if (err instanceof JournalLockBusyError) throw new DavError(503, err.code, err.message, { cause: err });
      throw new DavError(500, 'DAV_ERR_PROPSTORE', `cannot write the property store ${this.#file}: ${(err as Error).message}`, { cause: err });
    });
  }

  async #locked(task: () => Promise<void>): Promise<void> {
    const lock = this.#lock;
    // A read-only share refuses every write method before it reaches the store.
    if (!lock) throw new Error('DeadPropStore: a read-only store cannot be changed');
    await lock.acquire();
    try {
      await task();
    } finally {
      await lock.release();
    }
  }

  /** A tree operation, or null when it meets no stored property: it needs no journal line. */
  #treeOp(op: Exclude<Op, { p: string }>): Op | null {
    const roots = 'rm' in op ? [op.rm] : 'mv' in op ? op.mv : op.cp;
    for (const p of this.#props.keys()) if (roots.some((r) => isWithin(p, r))) return op;
    return null;
  }

  #apply(op: Op): void {
    this.#generation++;
    if ('p' in op) {
      const m = new Map(this.#props.get(op.p));
      for (const k of op.del ?? []) m.delete(k);
      for (const [k, v] of op.set ?? []) m.set(k, v);
      if (m.size) this.#props.set(op.p, m);
      else this.#props.delete(op.p);
    } else if ('rm' in op) {
      for (const p of [...this.#props.keys()]) if (isWithin(p, op.rm)) this.#props.delete(p);
    } else {
      const [from, to] = 'mv' in op ? op.mv : op.cp;
      const moved: [string, Map<string, string>][] = [];
      for (const [p, m] of this.#props) if (isWithin(p, from)) moved.push([to + p.slice(from.length), new Map(m)]);
      for (const p of [...this.#props.keys()]) {
        if (isWithin(p, to) || ('mv' in op && isWithin(p, from))) this.#props.delete(p);
      }
      for (const [p, m] of moved) this.#props.set(p, m);
    }
  }

  /**
   * Bring #props up to the journal on disk: the lines appended since the last look, or the whole file when it is
   * another one (compacted by another process, or removed and made anew). A writer creates a missing journal.
   * Returns the journal's size: more than #consumed when it ends in a line not finished (yet).
   */
  async #catchUp(): Promise<number> {
    const file = this.#file as string;
    let now: BigIntStats | null = null;
    try {
      now = await stat(file, { bigint: true });
    } catch (err) {
      // ENOTDIR too: a read-only store whose directory was never made (its path crosses a file).
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
    if (now && this.#replays(now)) {
      if (Number(now.size) > this.#consumed) await this.#readFrom(this.#fh as FileHandle, Number(now.size));
      return Number(now.size);
    }
    if (!now) {
      await this.#switchTo(null);
      if (this.#readOnly) return 0;
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    }
    const fh = await open(file, this.#readOnly ? 'r' : 'a+', 0o600);
    const opened = await fh.stat({ bigint: true });
    await this.#switchTo(fh, opened);
    await this.#readFrom(fh, Number(opened.size));
    return Number(opened.size);
  }

  /**
   * Whether `now` (a stat of the journal's path) is the file #props replays, grown or not. A journal shorter than
   * what was read is another one too (rewritten in place by hand).
   */
  #replays(now: BigIntStats): boolean {
    return this.#fh !== null && now.ino === this.#ino && now.dev === this.#dev && Number(now.size) >= this.#consumed;
  }

  /** Forget what was replayed and start over on `fh` (null: no journal, no properties). */
  async #switchTo(fh: FileHandle | null, st?: BigIntStats): Promise<void> {
    if (this.#fh && this.#fh !== fh) await this.#fh.close();
    this.#fh = fh;
    this.#dev = st?.dev ?? -1n;
    this.#ino = st?.ino ?? -1n;
    this.#consumed = 0;
    this.#lines = 0;
    if (this.#props.size) this.#generation++;
    this.#props.clear();
  }

  /** Apply the whole lines between #consumed and `size`; a line not ended yet is left for the next look. */
  async #readFrom(fh: FileHandle, size: number): Promise<void> {
    const data = Buffer.allocUnsafe(size - this.#consumed);
    let got = 0;
    while (got < data.length) {
      const { bytesRead } = await fh.read(data, got, data.length - got, this.#consumed + got);
      if (bytesRead === 0) break; // cut back by a writer since the stat
      got += bytesRead;
    }
    const end = data.subarray(0, got).lastIndexOf(0x0a) + 1;
    for (let start = 0; start < end; ) {
      const nl = data.indexOf(0x0a, start);
      const line = data.toString('utf8', start, nl);
      start = nl + 1;
      if (line === '') continue;
      this.#lines++;
      try {
        this.#apply(JSON.parse(line) as Op);
      } catch {
        this.#log.warn({ file: this.#file }, 'dead-property journal: skipping a torn or unreadable line');
      }
    }
    this.#consumed += end;
  }

  /**
   * #catchUp for a writer holding the lock. Nobody else is writing then, so bytes after the last whole line are a
   * line a crashed writer left unfinished: they are cut off, or the next line would be glued to them and lost with
   * them.
   */
  async #catchUpLocked(): Promise<void> {
    if ((await this.#catchUp()) === this.#consumed) return;
    this.#log.warn({ file: this.#file }, 'dead-property journal: cutting off a torn last line');
    await (this.#fh as FileHandle).truncate(this.#consumed);
  }

  /** Append one whole line, or nothing: a short or failed write is cut back off and reported. */
  async #append(line: string): Promise<void> {
    const fh = this.#fh as FileHandle;
    const bytes = Buffer.from(line);
    let written = 0;
    try {
      // A regular file takes a short write only when the disk fills up; the next one then fails with ENOSPC.
      while (written < bytes.length) written += (await fh.write(bytes, written, bytes.length - written)).bytesWritten;
    } catch (err) {
      await fh.truncate(this.#consumed).catch((e: unknown) => this.#log.warn({ file: this.#file, err: (e as Error).message }, 'dead-property journal: cannot cut a torn line off'));
      throw err;
    }
  }

  /**
   * At open, under the lock: cut a torn line off and compact when the journal holds more lines than resources.
   * Both only tidy, so a lock another process holds for long, or a full disk, leaves the journal as it is.
   */
  async #tidy(): Promise<void> {
    try {
      await this.#locked(async () => {
        await this.#catchUpLocked();
        if (this.#lines > this.#props.size) await this.#compactOrKeep();
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (err instanceof JournalLockBusyError) this.#log.debug({ file: this.#file }, 'dead-property journal: another process is writing; not compacted now');
      else if (code === 'ENOSPC' || code === 'EDQUOT') this.#log.warn({ file: this.#file, err: (err as Error).message }, 'dead-property journal: compaction failed; keeping the journal as it is');
      else throw err;
    }
  }

  /**
   * Compaction only saves space: when it cannot be done (a full disk), the journal it would have replaced is
   * still whole, so this warns and goes on with it.
   */
  async #compactOrKeep(): Promise<void> {
    try {
      await this.#compact();
    } catch (err) {
      this.#log.warn({ file: this.#file, err: (err as Error).message }, 'dead-property journal: compaction failed; keeping the journal as it is');
      await rm(`${this.#file}.tmp`, { force: true }).catch(() => {});
    }
  }

  /**
   * Rewrite the journal as one line per resource, atomically (temp file + rename), under the lock and caught up,
   * so no other process's line is left out. The others see a new inode and replay it.
   */
  async #compact(): Promise<void> {
    const file = this.#file as string;
    const tmp = `${file}.tmp`;
    let out = '';
    for (const [p, m] of this.#props) out += JSON.stringify({ p, set: [...m] }) + '\n';
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.write(out);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    // The snapshot is what #props holds: open it for appends without replaying it.
    const next = await open(file, 'a+', 0o600);
    const st = await next.stat({ bigint: true });
    await this.#fh?.close();
    this.#fh = next;
    this.#dev = st.dev;
    this.#ino = st.ino;
    this.#consumed = Buffer.byteLength(out);
    this.#lines = this.#props.size;
    this.#log.debug({ file, resources: this.#props.size }, 'dead-property journal compacted');
  }
}
