/**
 * A metadata cache of directory listings, kept warm by inotify and never allowed to answer with stale data.
 *
 * What is cached: for each watched directory, its member names and their stats (as Entries). PROPFIND Depth 1
 * on a cached directory then needs no readdir and no stat per member — the part of a 10,000-entry listing
 * that dominates its cost.
 *
 * Why it cannot be stale:
 * - Each listed directory gets one inotify watch (Node's fs.watch, active as soon as the call returns). Its
 *   events arrive synchronously from the inotify read and each one marks the member it names dirty (re-stat on
 *   next use) or, for create/delete/rename, the membership incomplete (re-readdir).
 *   The design card named chokidar for this. Measured, it does not fit: when it starts watching a directory
 *   chokidar lstats every member before it reports ready, and again (at most once a second) after any change in
 *   it — for a 10,000-file directory that scan took 0.35 s idle and never finished within 2.4 s while PROPFINDs
 *   were being served, so the cache was never used, and a directory being written to is rescanned
 *   continuously. chokidar itself uses fs.watch on Linux; the raw watch is what the cache needs.
 * - Members that are directories are always re-stat'ed: changes inside them do not reach the parent's watch.
 * - An event can still be queued in the kernel, unread, when a request that causally follows the change is
 *   served. So before trusting a listing, `barrier()` renames a sentinel file watched through the same inotify
 *   descriptor (libuv keeps one per loop, and the kernel keeps its events in order) and waits for that event:
 *   once it has been read, every event queued before the request has been read too. If the barrier does not
 *   complete in time, the listing is read from disk instead. Each round gives the sentinel a new name, `r<N>`,
 *   so an event says which round it ends, and all rounds before: a sentinel event the kernel dropped costs its
 *   own round a timeout and no other (counting events instead fell one behind for good, every later barrier
 *   timing out).
 * - A listing is stored only if no event touched its directory from before it was read until a barrier after
 *   (an epoch check), so every change that could have disturbed the reads has been seen.
 * - Events the kernel dropped (a full inotify queue) are assumed when one read brings very many: see overflowAt.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, watch as fsWatch, writeFileSync, type FSWatcher } from 'node:fs';
import { rename, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../src/log.js';
import type { Entry } from './storage/backend.js';

/** A cached directory listing: member name → entry, false when hidden, null when it must be looked at again. */
export interface CachedListing {
  members: Map<string, Entry | false | null>;
  /** False when members were added or removed since the listing was read: the names need a readdir. */
  complete: boolean;
}

interface DirState {
  watcher: FSWatcher;
  /** Identity of the watched directory (device, inode, birth time): a watch follows its inode, not its path. */
  id: string | undefined;
  epoch: number;
  listing: CachedListing | null;
}

/** The identity a watch follows: device, inode and birth time (ext4 hands a freed inode number out again at once). */
export function dirIdentity(s: { dev: number; ino: number; birthtimeMs: number }): string {
  return `${s.dev}:${s.ino}:${s.birthtimeMs}`;
}

/** Options of the cache. */
export interface MetaCacheOptions {
  /** Most directories watched at once; the least recently used are dropped. */
  maxDirs: number;
  /** How long (ms) a barrier may wait for its sentinel event before the cache is bypassed. */
  barrierTimeoutMs?: number;
  log: Logger;
  /** How a directory is watched: `fs.watch`, not persistent. Tests pass one that can fail its watchers. */
  watchDir?: (dir: string) => FSWatcher;
}

const watchDir = (dir: string): FSWatcher => fsWatch(dir, { persistent: false });

/**
 * inotify queues at most max_queued_events (16384 by default); past that the kernel drops events and queues one
 * IN_Q_OVERFLOW, which libuv discards (it belongs to no watch), so a cache would go on trusting listings that
 * missed changes. libuv reads the whole queue in one go, before the loop reaches its next setImmediate: a read
 * that brought half the limit or more (other watches of the process share the queue) may have overflowed, and
 * every cache forgets its listings.
 */
const overflowAt = Math.floor(readQueueLimit() / 2);
const liveCaches = new Set<MetaCache>();
let burst = 0;

function countEvent(): void {
  if (burst++ > 0) return;
  setImmediate(() => {
    if (burst >= overflowAt) for (const c of liveCaches) c.forget();
    burst = 0;
  });
}

function readQueueLimit(): number {
  try {
    return Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8')) || 16384;
  } catch {
    return 16384;
  }
}

/** Sentinel directories of caches not closed yet, removed when the process exits without closing them. */
const liveSentinels = new Set<string>();

/**
 * Removes the sentinel directories of processes that died without their exit hook (SIGKILL, a crash): each
 * name carries its process's pid, and a pid that no longer runs leaves its directory to whoever comes next.
 */
function sweepStaleSentinels(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^spicedav-sentinel-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || processRuns(pid)) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function trackSentinel(dir: string): void {
  // One exit handler for all caches (a per-cache listener would pile up in processes that make many servers).
  if (liveSentinels.size === 0 && !exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const d of liveSentinels) rmSync(d, { recursive: true, force: true });
    });
  }
  liveSentinels.add(dir);
}
let exitHookInstalled = false;

/** The listing cache of one share (see the file comment for the freshness argument). */
export class MetaCache {
  readonly #dirs = new Map<string, DirState>(); // insertion order = LRU order
  readonly #opts: Required<MetaCacheOptions>;
  #sentinelDir = '';
  #sentinel: FSWatcher | undefined;
  /** No event will come from it (its watch reported an error, or it could not be made): the next barrier replaces it. */
  #sentinelFailed = false;
  /** The sentinel file is named `r<#sentinelRound>`: the last barrier round whose rename succeeded. */
  #sentinelRound = 0;
  /** The highest round whose sentinel event has been read. */
  #seen = 0;
  #round: { promise: Promise<boolean>; started: boolean } | null = null;
  /** Barriers waiting for their sentinel event; `settle(true)` once it is read, `settle(false)` on close. */
  #waiters: { target: number; settle: (read: boolean) => void }[] = [];
  #closed = false;

  constructor(options: MetaCacheOptions) {
    this.#opts = { barrierTimeoutMs: 200, watchDir, ...options };
    sweepStaleSentinels();
    this.#openSentinel();
    liveCaches.add(this);
  }

  /** Make a sentinel directory holding `r<#sentinelRound>` and watch it. */
  #openSentinel(): void {
    // Until the watch is in place: should anything below throw, the next barrier tries again, not waits in vain.
    this.#sentinelFailed = true;
    const dir = mkdtempSync(join(tmpdir(), `spicedav-sentinel-${process.pid}-`));
    trackSentinel(dir);
    // Before anything else can throw: a directory made here is removed by whoever closes the sentinel next.
    this.#sentinelDir = dir;
    writeFileSync(join(dir, `r${this.#sentinelRound}`), '');
    const sentinel = this.#opts.watchDir(dir);
    this.#sentinel = sentinel;
    sentinel.on('change', (_event: string, name: string | Buffer | null) => {
      countEvent();
      // A rename brings two events, the old name's and the new one's: the new one ends its round.
      const round = sentinelRound(name);
      if (round > this.#seen) {
        this.#seen = round;
        this.#wake();
      }
    });
    // Not seen from inotify, but Windows reports a watched directory deleted (a temp cleaner) as EPERM here, and
    // an 'error' nobody listens to would end the server. The watch is dead: its waiting barriers are answered
    // now (the cache is bypassed for them), and the next barrier makes a new sentinel.
    sentinel.on('error', (err: Error) => {
      if (this.#sentinel !== sentinel) return;
      this.#opts.log.warn({ dir, err: err.message }, 'the metadata cache sentinel watch failed; the next barrier makes a new one');
      this.#sentinelFailed = true;
      this.#abandonWaiters();
    });
    this.#sentinelFailed = false;
  }

  /**
   * Stop watching the sentinel and remove its directory. Never throws: `close()` runs inside the server's, which
   * must go on to close the watches and finish the state journals. A directory that cannot be removed is logged
   * and left to the exit hook (and, should that fail too, to the sweep of the next cache once this process is gone).
   */
  #closeSentinel(): void {
    this.#sentinel?.close();
    // A barrier's rename may be running in the thread pool: when it lands between the listing and the rmdir, the
    // rmdir finds the renamed file (ENOTEMPTY). Only one rename runs at a time, so listing again finds it.
    // (rmSync's own maxRetries retries the rmdir alone, without listing again.)
    for (let attempt = 1; ; attempt++) {
      try {
        rmSync(this.#sentinelDir, { recursive: true, force: true });
        liveSentinels.delete(this.#sentinelDir);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' && attempt < 3) continue;
        this.#opts.log.warn({ dir: this.#sentinelDir, err: (err as Error).message }, 'cannot remove the metadata cache sentinel; it is tried again at exit');
        return;
      }
    }
  }

  /** Rename the sentinel to round `target`, first replacing it if it was removed or its watch failed; false if neither works. */
  async #touchSentinel(target: number): Promise<boolean> {
    if (!this.#sentinelFailed) {
      try {
        await this.#renameSentinel(target);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || this.#closed) return false;
        // Something removed the sentinel: a /tmp cleaner (systemd-tmpfiles ages /tmp out after 10 days on many
        // distributions) on a share idle that long. Without a new one every later barrier fails and the cache
        // is never used again. A new directory, not the old path recreated: that path could be taken meanwhile.
        this.#opts.log.warn({ dir: this.#sentinelDir }, 'the metadata cache sentinel was removed; making a new one');
      }
    }
    if (this.#closed) return false;
    try {
      this.#closeSentinel();
      this.#openSentinel();
      await this.#renameSentinel(target);
      return true;
    } catch {
      return false;
    }
  }

  /** Rename the sentinel from round `#sentinelRound` to `target`. */
  #renameSentinel(target: number): Promise<void> {
    return rename(join(this.#sentinelDir, `r${this.#sentinelRound}`), join(this.#sentinelDir, `r${target}`));
  }

  /** The listing of a watched directory if it can be used now, after the barrier; null otherwise. */
  async listing(dir: string): Promise<{ listing: CachedListing; epoch: number } | null> {
    const st = this.#dirs.get(dir);
    if (!st?.listing) return null;
    if (!(await this.barrier())) return null;
    // The barrier may have delivered events that dropped the listing.
    if (!st.listing || this.#dirs.get(dir) !== st) return null;
    this.#touch(dir, st);
    return { listing: st.listing, epoch: st.epoch };
  }

  /**
   * The current epoch of a directory (bumped by every event in it); -1 when it is not watched. `id` is the
   * identity of what is at `dir` now: when the watched directory was moved away or replaced (its inode's watch
   * went with it), the state is dropped and -1 returned.
   */
  epoch(dir: string, id?: string): number {
    const st = this.#dirs.get(dir);
    if (!st) return -1;
    if (id !== undefined && st.id !== undefined && st.id !== id) {
      this.#drop(dir);
      return -1;
    }
    return st.epoch;
  }

  /**
   * Store a listing read while the epoch was `epoch`; ignored if anything happened in the directory since.
   * Resolves whether it was stored. The check waits for a barrier: a change that made the reads see a wrong
   * directory (moved away or replaced mid-listing, so a member's stat failed) may still have its event unread
   * in the kernel, and a listing stored before that event would keep the wrong answer for good.
   */
  async store(dir: string, epoch: number, listing: CachedListing): Promise<boolean> {
    const st = this.#dirs.get(dir);
    if (!st || st.epoch !== epoch) return false;
    if (!(await this.barrier()) || st.epoch !== epoch || this.#dirs.get(dir) !== st) return false;
    st.listing = listing;
    return true;
  }

  /** Start watching a directory (after it was listed), so its next listing can be cached. */
  watch(dir: string, id?: string): void {
    if (this.#closed || this.#dirs.has(dir)) return;
    let watcher: FSWatcher;
    try {
      watcher = this.#opts.watchDir(dir);
    } catch (err) {
      this.#opts.log.debug({ dir, err: (err as Error).message }, 'cannot watch a directory; its listings are not cached');
      return;
    }
    const st: DirState = { watcher, id, epoch: 0, listing: null };
    watcher.on('change', (event: string, name: string | Buffer | null) => {
      countEvent();
      this.#event(st, event, name === null ? '' : String(name));
    });
    watcher.on('error', (err: unknown) => {
      this.#opts.log.debug({ dir, err: (err as Error).message }, 'cache watcher failed; dropping the directory');
      this.#drop(dir);
    });
    this.#dirs.set(dir, st);
    // `id` is from a stat made before the watch: if the directory was replaced in between, the watch follows the
    // newcomer, and should the first come back the state would match it while seeing none of its changes.
    if (id !== undefined) {
      void stat(dir).then(dirIdentity, () => undefined).then((now) => {
        if (now !== id && this.#dirs.get(dir) === st) this.#drop(dir);
      });
    }
    while (this.#dirs.size > this.#opts.maxDirs) {
      const oldest = this.#dirs.keys().next().value as string;
      this.#drop(oldest);
    }
  }

  /** Forget what is cached about a directory (the server changed it). */
  invalidate(dir: string, name?: string): void {
    const st = this.#dirs.get(dir);
    if (st) this.#event(st, 'rename', name ?? '');
  }

  /**
   * Resolve true once every inotify event queued before the call has been processed (false on timeout).
   * Callers arriving before a round's sentinel is touched share that round.
   */
  barrier(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#round && !this.#round.started) return this.#round.promise;
    const previous = this.#round?.promise ?? Promise.resolve(true);
    const round = { promise: Promise.resolve(false), started: false };
    round.promise = previous.then(async () => {
      round.started = true;
      const target = this.#sentinelRound + 1;
      if (!(await this.#touchSentinel(target))) return false;
      this.#sentinelRound = target;
      // Closed, or the watch failed, while the rename ran: nothing will read the event any more.
      if (this.#closed || this.#sentinelFailed) return false;
      return new Promise<boolean>((resolve) => {
        // Not unref'd: the watchers are not persistent, so while a barrier waits its timer is what keeps the
        // loop polling. Unref'd, a loop whose last request (a stat, say) completed in the same poll as the
        // sentinel's rename would exit with the sentinel's event still unread and the barrier never settled.
        const timer = setTimeout(() => resolve(false), this.#opts.barrierTimeoutMs);
        this.#waiters.push({ target, settle: (read) => (clearTimeout(timer), resolve(read)) });
        // The event may have been read already, while the rename's completion was on its way.
        if (this.#seen >= target) this.#wake();
      });
    });
    this.#round = round;
    return round.promise;
  }

  /** Forget every listing (events may have been lost); the watches stay. */
  forget(): void {
    this.#opts.log.debug({ dirs: this.#dirs.size }, 'inotify may have dropped events; cached listings are forgotten');
    for (const st of this.#dirs.values()) {
      st.epoch++;
      st.listing = null;
    }
  }

  /** Stop every watcher and remove the sentinel directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    liveCaches.delete(this);
    this.#closeSentinel();
    // The sentinel's events stop with its watcher: waiting barriers answer now, not at their timeout, so a
    // closed cache neither delays its requests nor holds the process open.
    this.#abandonWaiters();
    for (const st of this.#dirs.values()) st.watcher.close();
    this.#dirs.clear();
  }

  /** Answer every waiting barrier false: no event will come for it (the cache is bypassed for its request). */
  #abandonWaiters(): void {
    for (const w of this.#waiters.splice(0)) w.settle(false);
  }

  /** Resolve the barriers whose sentinel event (or a later round's) has been read. */
  #wake(): void {
    this.#waiters = this.#waiters.filter((w) => (w.target <= this.#seen ? (w.settle(true), false) : true));
  }

  #event(st: DirState, event: string, name: string): void {
    st.epoch++;
    const l = st.listing;
    if (!l) return;
    if (!name) {
      st.listing = null;
      return;
    }
    if (event === 'rename') l.complete = false;
    if (l.members.has(name) || event === 'rename') l.members.set(name, null);
  }

  #touch(dir: string, st: DirState): void {
    this.#dirs.delete(dir);
    this.#dirs.set(dir, st);
  }

  #drop(dir: string): void {
    const st = this.#dirs.get(dir);
    if (!st) return;
    this.#dirs.delete(dir);
    st.watcher.close();
  }
}

/** The barrier round a sentinel event names (`r<N>`), 0 for anything else. */
function sentinelRound(name: string | Buffer | null): number {
  const m = typeof name === 'string' ? /^r(\d+)$/.exec(name) : null;
  return m ? Number(m[1]) : 0;
}
