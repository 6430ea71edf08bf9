/**
 * A lock file that lets several processes write one journal (`shared-journal.ts`): two VMs sharing the same folder
 * (spice-gtk shares ~/Public with every VM), or `serve` and `share` on one folder. Only the writer holds it, for the
 * few milliseconds of an append or a compaction; readers never take it.
 *
 * Node has no flock(2), so the lock is a symbolic link made with symlink(2), which fails when the name exists,
 * and whose target names the holder: `pid host nonce` (one call makes and fills it, with no data block to
 * allocate, where a file takes a create, a write and a close). Where symbolic links cannot be made (Windows without the privilege),
 * a file made with O_EXCL holds the same line. A holder that died while holding it (SIGKILL during a write) leaves
 * it behind; the next writer breaks it when its pid is gone on this host, or when it is older than any write could
 * take (a holder on another host sharing the state directory over NFS).
 */
import { constants } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpicedavError } from '../../src/errors.js';
import type { Io } from '../storage/io.js';

/** How long `acquire` waits for a live holder (default 5 s) and when a lock counts as abandoned (default 30 s). */
export interface JournalLockOptions {
  waitMs?: number;
  staleMs?: number;
}

/** The lock stayed held by a live process for longer than the wait. The journal's owner gives it its own code. */
export class JournalLockBusyError extends SpicedavError {
  constructor(
    readonly file: string,
    /** The holder's `pid host nonce`; empty when its lock file was read before it was filled. */
    readonly holder: string,
  ) {
    super('DAV_ERR_JOURNAL_BUSY', `${file} is held by another process (${holder || 'unknown'})`);
  }
}

export class JournalLock {
  readonly #file: string;
  readonly #io: Io;
  readonly #waitMs: number;
  readonly #staleMs: number;
  readonly #host = hostname();
  #held = false;
  /** False once symlink(2) was refused here: the lock is then a file. */
  #links = true;

  /** `io` makes the calls: inline on a local disk, where they take microseconds, else in the thread pool. */
  constructor(file: string, io: Io, { waitMs = 5000, staleMs = 30_000 }: JournalLockOptions = {}) {
    this.#file = file;
    this.#io = io;
    this.#waitMs = waitMs;
    this.#staleMs = staleMs;
  }

  /** Take the lock, waiting (2 ms, doubling to 50 ms) while another live process holds it. */
  async acquire(): Promise<void> {
    if (this.#held) throw new Error('JournalLock.acquire: already held (calls must not overlap)');
    const me = `${process.pid} ${this.#host} ${randomBytes(6).toString('hex')}`;
    const deadline = Date.now() + this.#waitMs;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      if (await this.#create(me)) {
        this.#held = true;
        return;
      }
      const holder = await this.#breakIfAbandoned();
      if (holder === null) continue;
      if (Date.now() >= deadline) throw new JournalLockBusyError(this.#file, holder);
      await sleep(delay);
    }
  }

  /** Makes the lock naming `me`; false when it exists. */
  async #create(me: string): Promise<boolean> {
    try {
      if (this.#links) {
        await this.#io.symlink(me, this.#file);
        return true;
      }
      const fd = await this.#io.open(this.#file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        const line = Buffer.from(me);
        for (let done = 0; done < line.length; ) done += await this.#io.write(fd, line, done, line.length - done, null);
      } catch (err) {
        // A full disk: the file was made (an inode) but its line was not; leave no lock behind.
        await this.#io.close(fd).finally(() => this.#io.unlink(this.#file, 0).catch(() => {}));
        throw err;
      }
      await this.#io.close(fd);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (!this.#links || !NO_SYMLINKS.has(code ?? '')) throw err;
      this.#links = false;
      return this.#create(me);
    }
  }

  /** Give the lock back. */
  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await this.#io.unlink(this.#file, 0).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /**
   * Removes the lock when its holder is gone; returns null then (or when the lock vanished meanwhile), else the
   * holder's line. A lock file read empty is a holder between its create and its write: alive unless old.
   */
  async #breakIfAbandoned(): Promise<string | null> {
    let content: string;
    let age: number;
    try {
      content = await this.#read();
      age = Date.now() - (await this.#io.lstat(this.#file)).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const [pid, host] = content.split(' ');
    const dead = host === this.#host && !processAlive(Number(pid));
    if (!dead && age < this.#staleMs) return content;
    // Remove only what was judged: a new holder that took the lock since has another nonce. (Between this read and
    // the unlink is a window of microseconds, and only two writers breaking one dead holder's lock at once meet it.)
    if ((await this.#read().catch(() => null)) === content) await this.#io.unlink(this.#file, 0).catch(() => {});
    return null;
  }

  /** The holder's line: a link's target, or a lock file's content (made where links cannot be). */
  async #read(): Promise<string> {
    try {
      return await this.#io.readlink(this.#file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    }
    const fd = await this.#io.open(this.#file, constants.O_RDONLY);
    try {
      // `pid host nonce` is short; a lock file holding more is not one of ours, and its head tells that as well.
      const buf = Buffer.alloc(512);
      return buf.toString('utf8', 0, await this.#io.read(fd, buf, 0, buf.length, 0)).trim();
    } finally {
      await this.#io.close(fd);
    }
  }
}

/** symlink(2) errors that mean "not here" (Windows without the privilege, a file system without links). */
const NO_SYMLINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** Whether a process with this pid exists here (EPERM: it does, under another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
