/**
 * WebDAV write locks (RFC 4918 §6, §7): exclusive and shared, depth 0 and infinity.
 *
 * Timeouts are enforced: an expired lock is dropped before any question is answered, so it can neither block a
 * writer nor show up in lockdiscovery (phodav reports timeouts but never expires anything).
 *
 * Several processes may serve one folder (two VMs sharing ~/Public, or `serve` beside `share`), and a file Word
 * locked in one VM must be locked for the other too. So the lock table is replayed from a journal shared by every
 * process serving the folder (`journal/shared-journal.ts`, `locks-<hash>.jsonl` beside the dead properties):
 *
 *   {"add":{"token":"urn:uuid:…","path":"/a","depth":0,"scope":"exclusive","owner":null,"timeout":3600,
 *           "expires":1795000000000,"by":"4242 host 9f86d081884c"}}
 *   {"ext":["urn:uuid:…",3600,1795000000000]}  {"rm":["urn:uuid:…"]}  {"rmw":"/a"}
 *
 * A lock is granted under the journal's lock after catching up, so two processes never both grant conflicting
 * locks. A lock belongs to its client, not to the server process: when the server that granted it goes away (it
 * closed, was killed, or its pid is dead or reused on this host), the lock is *orphaned*, not dropped. For a grace
 * period (`orphanGrace`, default 30 minutes, never past the lock's own timeout) it still guards the file and its
 * token still works, so an editor in the guest whose `share` was restarted saves through the new one; the first
 * request that submits the token makes the server it reaches the lock's holder again (`claim`). An orphan nobody
 * claims in time is dropped, so a crashed server cannot leave a file locked for the days a client may ask for.
 * Expiry times are wall-clock, which every process on a host shares; locks granted on another host sharing the
 * state directory end by their timeout only (whether that server lives is not known here).
 *
 *   {"orph":[["urn:uuid:…"],1795000000000]}  (its server closed, or was found gone: when)
 *   {"own":[["urn:uuid:…"],"4243 host 1c2d…"]}  (claimed by the server its client came back through)
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DavError } from './errors.js';
import { isWithin, type DavPath } from './paths.js';
import { SharedJournal, type JournalState, type SharedJournalOptions } from './journal/shared-journal.js';
import { processAlive } from './journal/journal-lock.js';
import type { Logger } from '../src/log.js';

/** One granted lock. */
export interface Lock {
  /** `urn:uuid:…` (RFC 4918 §20.5 recommends a UUID URN). */
  token: string;
  /** The lock root. */
  path: DavPath;
  depth: 0 | 'infinity';
  scope: 'exclusive' | 'shared';
  /** The client's `<D:owner>` element, serialised, echoed back verbatim; null if none was given. */
  owner: string | null;
  /** Granted timeout in seconds. */
  timeout: number;
  /** When it expires (ms since the epoch). */
  expires: number;
}

/** A lock as the journal keeps it: with the process that holds it, `pid host nonce`, and whether it is orphaned. */
interface HeldLock extends Lock {
  /** The server process that holds it, or held it last when `orphaned` is set. */
  by: string;
  /** When it was found without a server (ms since the epoch), if it was: it ends `orphanGrace` later unless claimed. */
  orphaned?: number;
}

type LockOp =
  | { add: HeldLock }
  | { ext: [token: string, timeout: number, expires: number] }
  | { rm: string[] }
  | { rmw: DavPath }
  | { orph: [tokens: string[], at: number] }
  | { own: [tokens: string[], by: string] };

/** Limits and clock of a LockManager. */
export interface LockManagerOptions {
  defaultTimeout: number;
  maxTimeout: number;
  maxLocks: number;
  /** Seconds an orphaned lock (its server gone) is kept for its client to come back through another server. Default 1800. */
  orphanGrace?: number;
  /** Clock in ms; tests pass a fake one. */
  now?: () => number;
}

const HOST = hostname();
/** This process as a lock's `by` names it; the nonce tells it from an earlier process that had the same pid. */
const THIS_PROCESS = `${process.pid} ${HOST} ${randomBytes(6).toString('hex')}`;

/** Whether the process that holds a lock is gone. One on another host is not known: its locks end by timeout. */
function holderGone(by: string): boolean {
  const [pid, host] = by.split(' ');
  if (host !== HOST) return false;
  if (Number(pid) === process.pid) return by !== THIS_PROCESS;
  return !processAlive(Number(pid));
}

/**
 * The grace of an orphaned lock, in seconds: davfs2's own lock timeout (its `lock_timeout`), which it refreshes before
 * the end, so a davfs2 mount in the guest always comes back within it. A client that next writes or refreshes later
 * than that (an editor left open over lunch, its host side restarted) finds its lock gone, as with no grace: a longer
 * one would keep crashed servers' files locked against everyone else for as long.
 */
export const DEFAULT_ORPHAN_GRACE = 1800;

/** How long whether a holder is alive is taken as known (finding out is a kill(2)). */
const HOLDER_CHECK_MS = 1000;

/** The locks as the journal says they are, less those expired or orphaned too long, and how each change applies. */
class LockTable implements JournalState<LockOp> {
  readonly locks = new Map<string, HeldLock>();
  readonly #now: () => number;
  readonly #graceMs: number;
  /** The earliest time a lock ends (its timeout, or its orphan grace): until then purge has nothing to drop. */
  #nextEnd = Infinity;
  /** Whether the process that holds a lock (its `by`) is gone, as found since #holdersChecked. */
  readonly #gone = new Map<string, boolean>();
  #holdersChecked = -Infinity;
  /** Told of the locks `purge` found orphaned, to put in the journal: every process then counts the same grace. */
  onOrphaned: ((tokens: string[], at: number) => void) | null = null;

  constructor(now: () => number, graceMs: number) {
    this.#now = now;
    this.#graceMs = graceMs;
  }

  get size(): number {
    this.purge();
    return this.locks.size;
  }

  /**
   * When the first live lock ends (ms since the epoch; Infinity with none): a full table has room again by then.
   * Counted afresh, since `#nextEnd` can be stale-early after an UNLOCK; this runs only when the table is full.
   */
  firstEnd(): number {
    this.purge();
    let first = Infinity;
    for (const l of this.locks.values()) first = Math.min(first, this.#end(l));
    return first;
  }

  snapshot(): LockOp[] {
    this.purge();
    return [...this.locks.values()].map((l) => ({ add: l }));
  }

  clear(): void {
    this.locks.clear();
    this.#nextEnd = Infinity;
  }

  apply(op: LockOp): void {
    if ('add' in op) {
      this.locks.set(op.add.token, op.add);
      this.#scheduled(op.add);
    } else if ('ext' in op) {
      const [token, timeout, expires] = op.ext;
      const lock = this.locks.get(token);
      if (!lock) return;
      lock.timeout = timeout;
      lock.expires = expires;
      this.#scheduled(lock);
    } else if ('rm' in op) {
      for (const token of op.rm) this.locks.delete(token);
    } else if ('rmw' in op) {
      for (const l of [...this.locks.values()]) if (isWithin(l.path, op.rmw)) this.locks.delete(l.token);
    } else if ('orph' in op) {
      for (const token of op.orph[0]) {
        const lock = this.locks.get(token);
        if (lock) this.#orphan(lock, op.orph[1]);
      }
    } else {
      for (const token of op.own[0]) {
        const lock = this.locks.get(token);
        if (!lock) continue;
        lock.by = op.own[1];
        delete lock.orphaned;
      }
    }
  }

  /** Tokens among `tokens` of live locks that no live server holds. */
  orphans(tokens: Iterable<string>): string[] {
    this.purge();
    return [...tokens].filter((t) => this.locks.get(t)?.orphaned !== undefined);
  }

  /**
   * Drop expired locks and orphans past their grace, and orphan the locks of servers that are gone (each holder
   * looked for again once a second).
   */
  purge(): void {
    const now = this.#now();
    if (now - this.#holdersChecked >= HOLDER_CHECK_MS) {
      this.#holdersChecked = now;
      this.#gone.clear();
    }
    let found: string[] | null = null;
    for (const l of this.locks.values()) {
      if (l.by === THIS_PROCESS || l.orphaned !== undefined) continue;
      let gone = this.#gone.get(l.by);
      if (gone === undefined) this.#gone.set(l.by, (gone = holderGone(l.by)));
      if (!gone) continue;
      this.#orphan(l, now);
      (found ??= []).push(l.token);
    }
    if (found) this.onOrphaned?.(found, now);
    if (now < this.#nextEnd) return;
    let next = Infinity;
    for (const l of this.locks.values()) {
      const end = this.#end(l);
      if (end <= now) this.locks.delete(l.token);
      else next = Math.min(next, end);
    }
    this.#nextEnd = next;
  }

  /** The earliest time any process found it orphaned counts, so all of them end its grace together. */
  #orphan(lock: HeldLock, at: number): void {
    lock.orphaned = Math.min(lock.orphaned ?? at, at);
    this.#scheduled(lock);
  }

  /** When a lock ends: its timeout, or sooner the end of its grace once orphaned. */
  #end(lock: HeldLock): number {
    return lock.orphaned === undefined ? lock.expires : Math.min(lock.expires, lock.orphaned + this.#graceMs);
  }

  #scheduled(lock: HeldLock): void {
    this.#nextEnd = Math.min(this.#nextEnd, this.#end(lock));
  }
}

/** The lock table of one share, shared with the other processes serving it. */
export class LockManager {
  readonly #table: LockTable;
  readonly #journal: SharedJournal<LockOp>;
  readonly #opts: Required<LockManagerOptions>;
  readonly #log: Logger;
  /** Tokens this manager granted: released by `close`. */
  readonly #mine = new Set<string>();
  #closed = false;

  private constructor(table: LockTable, journal: SharedJournal<LockOp>, opts: Required<LockManagerOptions>, log: Logger) {
    this.#table = table;
    this.#journal = journal;
    this.#opts = opts;
    this.#log = log;
  }

  /** Open (and replay) the lock journal at `file`, or keep the locks in memory only when `file` is null. */
  static async open(file: string | null, log: Logger, limits: LockManagerOptions, journal: SharedJournalOptions = {}): Promise<LockManager> {
    const opts = { now: Date.now, orphanGrace: DEFAULT_ORPHAN_GRACE, ...limits };
    const table = new LockTable(opts.now, opts.orphanGrace * 1000);
    const manager = new LockManager(table, await SharedJournal.open(file, table, { what: 'lock store', code: 'DAV_ERR_LOCKSTORE' }, log, journal), opts, log);
    if (file !== null && !journal.readOnly) table.onOrphaned = (tokens, at) => manager.#publishOrphans(tokens, at);
    return manager;
  }

  /** Apply what other processes serving this folder locked and unlocked since the last look. */
  sync(): Promise<void> {
    return this.#journal.sync();
  }

  /** Locks that apply to `path`: on it, or depth-infinity locks on an ancestor. */
  covering(path: DavPath): Lock[] {
    const out: Lock[] = [];
    for (const l of this.#live()) {
      if (l.path === path || (l.depth === 'infinity' && isWithin(path, l.path))) out.push(l);
    }
    return out;
  }

  /** Locks rooted strictly below `path` (what a depth-infinity operation on `path` also touches). */
  below(path: DavPath): Lock[] {
    const out: Lock[] = [];
    for (const l of this.#live()) if (l.path !== path && isWithin(l.path, path)) out.push(l);
    return out;
  }

  /** Locks rooted exactly at `path`. */
  at(path: DavPath): Lock[] {
    return [...this.#live()].filter((l) => l.path === path);
  }

  /** A live lock by token. */
  get(token: string): Lock | undefined {
    this.#table.purge();
    return this.#table.locks.get(token);
  }

  /** The number of live locks. */
  get size(): number {
    return this.#table.size;
  }

  /**
   * Grant a new lock, or throw 423 when it conflicts: an exclusive lock conflicts with any lock covering the
   * resource (or, for depth infinity, below it); a shared one only with exclusive locks.
   */
  async create(request: { path: DavPath; depth: 0 | 'infinity'; scope: 'exclusive' | 'shared'; owner: string | null; timeouts: number[] }): Promise<Lock> {
    let granted: HeldLock | undefined;
    await this.#journal.commit(() => {
      const touched = [...this.covering(request.path), ...(request.depth === 'infinity' ? this.below(request.path) : [])];
      const clash = touched.filter((l) => request.scope === 'exclusive' || l.scope === 'exclusive');
      if (clash.length) {
        throw new DavError(423, 'DAV_ERR_LOCKED', `${request.path} is already locked`, {
          condition: { name: 'no-conflicting-lock', hrefs: [] },
        });
      }
      if (this.#table.size >= this.#opts.maxLocks) {
        // Told when the first lock times out: an UNLOCK may free room sooner, never later. (maxLocks 0: never.)
        const first = this.#table.firstEnd();
        const retryAfter = Number.isFinite(first) ? Math.max(1, Math.ceil((first - this.#opts.now()) / 1000)) : undefined;
        const when = retryAfter === undefined ? '' : `; the first ends in ${retryAfter} s`;
        throw new DavError(503, 'DAV_ERR_TOO_MANY_LOCKS', `the server holds ${this.#opts.maxLocks} locks already (option maxLocks)${when}`, { retryAfter });
      }
      const timeout = this.#choose(request.timeouts);
      const { path, depth, scope, owner } = request;
      granted = { token: `urn:uuid:${randomUUID()}`, path, depth, scope, owner, timeout, expires: this.#opts.now() + timeout * 1000, by: THIS_PROCESS };
      return { add: granted };
    });
    // The lock as granted: an UNLOCK or DELETE that came right after may have removed it from the table already.
    if (!granted) throw new Error('LockManager.create: the journal committed no lock');
    this.#mine.add(granted.token);
    return granted;
  }

  /** Extend a lock's timeout (a refresh); the lock must exist. */
  async refresh(token: string, timeouts: number[]): Promise<Lock> {
    let refreshed: Lock | undefined;
    await this.#journal.commit(() => {
      const lock = this.get(token);
      if (!lock) throw new DavError(412, 'DAV_ERR_LOCK_GONE', `no lock ${token} (expired or never granted)`, { condition: { name: 'lock-token-matches-request-uri' } });
      const timeout = this.#choose(timeouts);
      refreshed = { ...lock, timeout, expires: this.#opts.now() + timeout * 1000 };
      return { ext: [token, timeout, refreshed.expires] };
    });
    if (!refreshed) throw new Error('LockManager.refresh: the journal committed no refresh');
    return refreshed;
  }

  /** Release a lock; false when there was none with that token. */
  async remove(token: string): Promise<boolean> {
    let had = false;
    await this.#journal.commit(() => {
      had = this.get(token) !== undefined;
      return had ? { rm: [token] } : null;
    });
    this.#mine.delete(token);
    return had;
  }

  /** Drop every lock rooted at or below `path` (after the resource was deleted or moved away). */
  removeWithin(path: DavPath): Promise<void> {
    return this.#journal.commit(() => ([...this.#live()].some((l) => isWithin(l.path, path)) ? { rmw: path } : null));
  }

  /** Seconds left on a lock (rounded up, at least 0). */
  remaining(lock: Lock): number {
    return Math.max(0, Math.ceil((lock.expires - this.#opts.now()) / 1000));
  }

  /**
   * Become the holder of the orphaned locks among `tokens` (the lock tokens a request submits): the client came back
   * through this server, so the lock lives on with it instead of ending with its grace. Nothing is written when no
   * token names an orphan, the usual case. A store that cannot be written does not fail the request: the lock then
   * stays an orphan, and its grace runs on.
   */
  async claim(tokens: ReadonlySet<string>): Promise<void> {
    if (this.#table.orphans(tokens).length === 0) return;
    let claimed: string[] = [];
    await this.#journal
      .commit(() => {
        claimed = this.#table.orphans(tokens);
        return claimed.length ? { own: [claimed, THIS_PROCESS] } : null;
      })
      .catch((err: unknown) => {
        claimed = [];
        this.#log.warn({ err: (err as Error).message }, 'could not take over an orphaned WebDAV lock; it ends with its grace');
      });
    for (const token of claimed) this.#mine.add(token);
    if (claimed.length) this.#log.info({ locks: claimed.length }, 'took over WebDAV locks of a server that is gone');
  }

  /**
   * Orphan the locks this server holds (it is going away: a restarted server takes them over when their clients come
   * back, see the top of this file), then close the journal. A lock store that cannot be written then is not worth
   * failing the shutdown for: the others orphan the locks of a process that is gone anyway.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const mine = [...this.#mine];
    this.#mine.clear();
    if (mine.length) {
      await this.#journal
        .commit(() => {
          const held = mine.filter((t) => {
            const lock = this.#table.locks.get(t);
            return lock?.by === THIS_PROCESS && lock.orphaned === undefined;
          });
          return held.length ? { orph: [held, this.#opts.now()] } : null;
        })
        .catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, "could not hand over this server's WebDAV locks; the others find them orphaned"));
    }
    await this.#journal.close();
  }

  /**
   * Write down when this process found locks orphaned (their server died): the others, and servers started later,
   * then end their grace at the same moment rather than counting from when each of them looked. Best effort: without
   * it each process counts from its own look.
   */
  #publishOrphans(tokens: string[], at: number): void {
    if (this.#closed) return;
    this.#journal
      .commit(() => {
        const still = tokens.filter((t) => this.#table.locks.get(t)?.orphaned !== undefined);
        return still.length ? { orph: [still, at] } : null;
      })
      .catch((err: unknown) => this.#log.debug({ err: (err as Error).message }, 'could not note orphaned WebDAV locks in the journal'));
  }

  #live(): IterableIterator<HeldLock> {
    this.#table.purge();
    return this.#table.locks.values();
  }

  /** The first timeout the client asked for that we can grant, capped; the default when it asked for none. */
  #choose(timeouts: number[]): number {
    const wish = timeouts.find((t) => t > 0);
    if (wish === undefined || wish === Infinity) return Math.min(this.#opts.defaultTimeout, this.#opts.maxTimeout);
    return Math.min(wish, this.#opts.maxTimeout);
  }
}
