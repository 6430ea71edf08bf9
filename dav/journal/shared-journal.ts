/**
 * An append-only journal that several processes serving one folder share, and the state each replays from it: the
 * dead properties (`props/dead-store.ts`) and the WebDAV locks (`locks.ts`) of a share.
 *
 * One JSON object per line, one line per change, so a change is all-or-nothing even across a crash: a torn last
 * line is ignored on replay and cut off before the next line is written; a line that could not be written whole (a
 * full disk) is cut off again at once. The journal is compacted into a snapshot of the state when it grows to
 * several times the live data.
 *
 * Two VMs may share the same folder (spice-gtk offers ~/Public to every VM), or `serve` may run beside `share`, so
 * the journal, not the memory of one process, is the truth: every process replays it, and before it answers from
 * its state (`sync`) it applies what the others appended since (one stat(2) when nothing changed). A writer holds
 * the journal's lock file (`journal-lock.ts`) while it catches up, builds its line from the state as it is then,
 * appends it and applies it in file order, so every process sees the same changes in the same order. A compaction,
 * which replaces the file, happens under the lock too; the others notice the new inode and replay it whole.
 */
import { constants, statSync, type BigIntStats } from 'node:fs';
import { dirname } from 'node:path';
import { DavError } from '../errors.js';
import { createIo, isLocalFileSystem, type Io } from '../storage/io.js';
import { JournalLock, JournalLockBusyError, type JournalLockOptions } from './journal-lock.js';
import type { Logger } from '../../src/log.js';

/** What a journal replays into: the owner's state, changed only through `apply`. */
export interface JournalState<Op> {
  /** Apply one change, read from the journal or just appended to it. */
  apply(op: Op): void;
  /** Forget everything: the journal is another file now (compacted by another process, or removed). */
  clear(): void;
  /** The changes that rebuild the state from nothing: what a compacted journal holds. */
  snapshot(): Op[];
  /** How many live entries the state holds: a journal with many more lines than that is worth compacting. */
  readonly size: number;
}

/** How `SharedJournal.open` opens a journal. */
export interface SharedJournalOptions {
  /** Only read what is there (a read-only share): no directory is made, no lock taken, nothing compacted. */
  readOnly?: boolean;
  /** How long a writer waits for another process's lock, and when a lock counts as abandoned. */
  lock?: JournalLockOptions;
  /**
   * Make the calls inline (synchronous): a change is then its four system calls, not four thread-pool round trips
   * as well (docs/dav.md measures both). Default: when the journal's directory is on a local disk; calls that turn
   * slow (a stalled disk) go to the thread pool for a while, as the storage's do (`storage/io.ts`).
   */
  inlineIo?: boolean;
}

/** Flags of the journal's descriptor: appends land at the end whoever else appends; reads are positioned. */
const APPEND = constants.O_RDWR | constants.O_CREAT | constants.O_APPEND;

/** How a journal's owner names it in errors and logs. */
export interface JournalNames {
  /** In messages: 'property store'. */
  what: string;
  /** The prefix of its error codes: `${code}` (500), `${code}_FULL` (507), `${code}_BUSY` (503). */
  code: string;
}

export class SharedJournal<Op> {
  readonly #file: string | null;
  readonly #state: JournalState<Op>;
  readonly #names: JournalNames;
  readonly #log: Logger;
  readonly #readOnly: boolean;
  readonly #lock: JournalLock | null;
  readonly #io: Io;
  /** The file the state replays (opened for appends, or read-only), and its identity. */
  #fd: number | null = null;
  #dev = -1n;
  #ino = -1n;
  /** Bytes of the journal applied: up to the end of its last whole line. */
  #consumed = 0;
  /** Whole lines in those bytes, unreadable ones included: what compaction would save. */
  #lines = 0;
  #queue: Promise<unknown> = Promise.resolve();
  /** Tasks queued or running in #serial. */
  #pending = 0;
  #syncFailing = false;

  private constructor(file: string | null, state: JournalState<Op>, names: JournalNames, log: Logger, { readOnly = false, lock, inlineIo }: SharedJournalOptions) {
    this.#file = file;
    this.#state = state;
    this.#names = names;
    this.#log = log;
    this.#readOnly = readOnly;
    // The directory may not exist yet: it is made on the same file system as its parent's, so look there.
    this.#io = createIo({ enabled: inlineIo ?? (file !== null && isLocalFileSystem(nearestDir(dirname(file)))), maxMs: 5, cooldownMs: 60_000, log });
    this.#lock = file && !readOnly ? new JournalLock(`${file}.lock`, this.#io, lock) : null;
  }

  /**
   * Open the journal at `file` and replay it into `state`; null keeps the state in memory only. A read-only journal
   * (for a read-only share, which changes nothing) needs neither a writable directory nor an existing one.
   */
  static async open<Op>(file: string | null, state: JournalState<Op>, names: JournalNames, log: Logger, options: SharedJournalOptions = {}): Promise<SharedJournal<Op>> {
    const journal = new SharedJournal(file, state, names, log, options);
    if (file) {
      await journal.#catchUp();
      if (!options.readOnly) await journal.#tidy();
    }
    return journal;
  }

  /**
   * Apply what other processes changed since the last look, before answering from the state. A journal that
   * cannot be read is logged (once until it can be again) and the state known so far stays.
   */
  sync(): Promise<void> {
    if (!this.#file || (this.#pending === 0 && this.#io.inline && this.#unchanged())) return Promise.resolve();
    return this.#serial(async () => {
      try {
        await this.#catchUp();
        this.#syncFailing = false;
      } catch (err) {
        if (!this.#syncFailing) this.#log.warn({ file: this.#file, err: (err as Error).message }, `${this.#names.what}: cannot read what other processes wrote`);
        this.#syncFailing = true;
      }
    });
  }

  /**
   * One change: `build` makes its line from the state as it is once every other process's changes are in (null:
   * nothing to change), under the lock, so no other writer comes between what it read and its line. A DavError
   * `build` throws (a conflict it found) is the caller's answer; the journal's own failures become 507, 503 or 500.
   */
  commit(build: () => Op | null): Promise<void> {
    return this.#serial(async () => {
      if (!this.#file) {
        const op = build();
        if (op) this.#state.apply(op);
        return;
      }
      await this.#locked(async () => {
        await this.#catchUpLocked();
        const op = build();
        if (op === null) return;
        const line = JSON.stringify(op) + '\n';
        await this.#append(line);
        // Under the lock nobody else writes: the line is the journal's new end, applied in its place.
        this.#consumed += Buffer.byteLength(line);
        this.#lines++;
        this.#state.apply(op);
        if (this.#lines > 1000 && this.#lines > 4 * this.#state.size) await this.#compactOrKeep();
      });
    }).catch((err: unknown) => {
      if (err instanceof DavError) throw err;
      const { what, code: prefix } = this.#names;
      const code = (err as NodeJS.ErrnoException).code;
      // RFC 4918 §11.5: 507 when the server cannot store what the request needs.
      if (code === 'ENOSPC' || code === 'EDQUOT') throw new DavError(507, `${prefix}_FULL`, `no space left for the ${what} ${this.#file}`, { cause: err });
      // The holder is alive and slow, or hung: either it lets go or its lock goes stale, so a retry can succeed.
      if (err instanceof JournalLockBusyError) throw new DavError(503, `${prefix}_BUSY`, `the ${what} is being written by another process (${err.holder || 'unknown'}; lock file ${err.file})`, { cause: err, retryAfter: 5 });
      throw new DavError(500, prefix, `cannot write the ${what} ${this.#file}: ${(err as Error).message}`, { cause: err });
    });
  }

  /**
   * Finish pending changes and close the journal; one whose state is empty is removed, so that every folder shared
   * once, for a minute, does not leave two files in the state directory for good.
   */
  async close(): Promise<void> {
    await this.#queue;
    if (this.#fd !== null && this.#lock && this.#state.size === 0) await this.#removeIfEmpty();
    const fd = this.#fd;
    this.#fd = null;
    if (fd !== null) await this.#io.close(fd);
  }

  /**
   * Under the lock and caught up, so no other process's change is lost: the journal still replays to nothing. The
   * others see it gone (an empty state, as before) and the next change makes it anew. Only tidying, so failures
   * (a busy lock, a read-only directory) leave it in place.
   */
  async #removeIfEmpty(): Promise<void> {
    try {
      await this.#locked(async () => {
        await this.#catchUpLocked();
        if (this.#state.size === 0) await this.#io.unlink(this.#file as string, this.#consumed);
      });
    } catch (err) {
      this.#log.debug({ file: this.#file, err: (err as Error).message }, `${this.#names.what}: empty, but not removed`);
    }
  }

  /** Whether the journal is as last read, by one inline stat(2): what every `sync` finds, but rarely. */
  #unchanged(): boolean {
    try {
      const now = statSync(this.#file as string, { bigint: true, throwIfNoEntry: false });
      return now ? this.#replays(now) && Number(now.size) === this.#consumed : this.#fd === null;
    } catch {
      return false; // the queued sync meets the error and says so
    }
  }

  /** Runs `task` after everything queued before it: reads and changes of the journal never overlap in a process. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    this.#pending++;
    const p = this.#queue.then(task).finally(() => this.#pending--);
    this.#queue = p.catch(() => {});
    return p;
  }

  async #locked(task: () => Promise<void>): Promise<void> {
    const lock = this.#lock;
    // A read-only share refuses every write method before it reaches a journal.
    if (!lock) throw new Error(`SharedJournal: a read-only ${this.#names.what} cannot be changed`);
    await lock.acquire();
    try {
      await task();
    } finally {
      await lock.release();
    }
  }

  /**
   * Bring the state up to the journal on disk: the lines appended since the last look, or the whole file when it is
   * another one (compacted by another process, or removed and made anew). A writer creates a missing journal.
   * Returns the journal's size: more than #consumed when it ends in a line not finished (yet).
   */
  async #catchUp(): Promise<number> {
    const file = this.#file as string;
    let now: BigIntStats | null = null;
    try {
      now = await this.#io.statBig(file);
    } catch (err) {
      // ENOTDIR too: a read-only journal whose directory was never made (its path crosses a file).
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
    if (now && this.#replays(now)) {
      if (Number(now.size) > this.#consumed) await this.#readFrom(this.#fd as number, Number(now.size));
      return Number(now.size);
    }
    if (!now) {
      await this.#switchTo(null);
      if (this.#readOnly) return 0;
      await this.#io.mkdirs(dirname(file), 0o700);
    }
    const fd = await this.#io.open(file, this.#readOnly ? constants.O_RDONLY : APPEND, 0o600);
    const opened = await this.#io.fstatBig(fd);
    await this.#switchTo(fd, opened);
    await this.#readFrom(fd, Number(opened.size));
    return Number(opened.size);
  }

  /**
   * Whether `now` (a stat of the journal's path) is the file the state replays, grown or not. A journal shorter
   * than what was read is another one too (rewritten in place by hand).
   */
  #replays(now: BigIntStats): boolean {
    return this.#fd !== null && now.ino === this.#ino && now.dev === this.#dev && Number(now.size) >= this.#consumed;
  }

  /** Forget what was replayed and start over on `fd` (null: no journal, an empty state). */
  async #switchTo(fd: number | null, st?: BigIntStats): Promise<void> {
    const old = this.#fd;
    this.#fd = fd;
    if (old !== null && old !== fd) await this.#io.close(old);
    this.#dev = st?.dev ?? -1n;
    this.#ino = st?.ino ?? -1n;
    this.#consumed = 0;
    this.#lines = 0;
    this.#state.clear();
  }

  /** Apply the whole lines between #consumed and `size`; a line not ended yet is left for the next look. */
  async #readFrom(fd: number, size: number): Promise<void> {
    const data = Buffer.allocUnsafe(size - this.#consumed);
    let got = 0;
    while (got < data.length) {
      const bytesRead = await this.#io.read(fd, data, got, data.length - got, this.#consumed + got);
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
        this.#state.apply(JSON.parse(line) as Op);
      } catch {
        this.#log.warn({ file: this.#file }, `${this.#names.what}: skipping a torn or unreadable line`);
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
    this.#log.warn({ file: this.#file }, `${this.#names.what}: cutting off a torn last line`);
    await this.#io.ftruncate(this.#fd as number, this.#consumed);
  }

  /** Append one whole line, or nothing: a short or failed write is cut back off and reported. */
  async #append(line: string): Promise<void> {
    const fd = this.#fd as number;
    const bytes = Buffer.from(line);
    let written = 0;
    try {
      // A regular file takes a short write only when the disk fills up; the next one then fails with ENOSPC.
      while (written < bytes.length) written += await this.#io.write(fd, bytes, written, bytes.length - written, null);
    } catch (err) {
      await this.#io.ftruncate(fd, this.#consumed).catch((e: unknown) => this.#log.warn({ file: this.#file, err: (e as Error).message }, `${this.#names.what}: cannot cut a torn line off`));
      throw err;
    }
  }

  /**
   * At open, under the lock: cut a torn line off and compact when the journal holds more lines than live entries.
   * Both only tidy, so a lock another process holds for long, or a full disk, leaves the journal as it is.
   */
  async #tidy(): Promise<void> {
    try {
      await this.#locked(async () => {
        await this.#catchUpLocked();
        if (this.#lines > this.#state.size) await this.#compactOrKeep();
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (err instanceof JournalLockBusyError) this.#log.debug({ file: this.#file }, `${this.#names.what}: another process is writing; not compacted now`);
      else if (code === 'ENOSPC' || code === 'EDQUOT') this.#log.warn({ file: this.#file, err: (err as Error).message }, `${this.#names.what}: compaction failed; keeping the journal as it is`);
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
      this.#log.warn({ file: this.#file, err: (err as Error).message }, `${this.#names.what}: compaction failed; keeping the journal as it is`);
      await this.#io.unlink(`${this.#file}.tmp`, 0).catch(() => {});
    }
  }

  /**
   * Rewrite the journal as the state's snapshot, atomically (temp file + rename), under the lock and caught up, so
   * no other process's line is left out. The others see a new inode and replay it.
   */
  async #compact(): Promise<void> {
    const file = this.#file as string;
    const tmp = `${file}.tmp`;
    const ops = this.#state.snapshot();
    let out = '';
    for (const op of ops) out += JSON.stringify(op) + '\n';
    const bytes = Buffer.from(out);
    const fd = await this.#io.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      for (let done = 0; done < bytes.length; ) done += await this.#io.write(fd, bytes, done, bytes.length - done, null);
      await this.#io.fsync(fd);
    } finally {
      await this.#io.close(fd);
    }
    // The journal it replaces is freed by the rename: its size decides whether that may run inline.
    await this.#io.rename(tmp, file, this.#consumed);
    // The snapshot is what the state holds: open it for appends without replaying it.
    const next = await this.#io.open(file, APPEND, 0o600);
    const st = await this.#io.fstatBig(next);
    const old = this.#fd;
    this.#fd = next;
    if (old !== null) await this.#io.close(old);
    this.#dev = st.dev;
    this.#ino = st.ino;
    this.#consumed = bytes.length;
    this.#lines = ops.length;
    this.#log.debug({ file, entries: ops.length }, `${this.#names.what} compacted`);
  }
}

/**
 * `dir`, or its nearest ancestor that is a directory: where a directory about to be made will live. (A path that
 * crosses a file fails later, when the journal is made, with the error the user is told.)
 */
function nearestDir(dir: string): string {
  for (;;) {
    try {
      if (statSync(dir).isDirectory()) return dir;
    } catch {
      // ENOENT, ENOTDIR, EACCES: look further up
    }
    const up = dirname(dir);
    if (up === dir) return dir;
    dir = up;
  }
}
