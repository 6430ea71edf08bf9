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
 * locks. It lives as long as the server that granted it, as it did when locks lived in one process's memory: a
 * server that closes releases its locks, and the locks of a process that is gone (its pid no longer alive on this
 * host, or alive as another process: pid 1 in a container) are dropped by the others, so a crashed server cannot
 * leave a file locked for the days a client may ask for. Expiry times are wall-clock, which every process on a
 * host shares.
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

/** A lock as the journal keeps it: with the process that granted it, `pid host nonce`. */
interface HeldLock extends Lock {
  by: string;
}

type LockOp = { add: HeldLock } | { ext: [token: string, timeout: number, expires: number] } | { rm: string[] } | { rmw: DavPath };

/** Limits and clock of a LockManager. */
export interface LockManagerOptions {
  defaultTimeout: number;
  maxTimeout: number;
  maxLocks: number;
  /** Clock in ms; tests pass a fake one. */
  now?: () => number;
}

const HOST = hostname();
/** This process as a lock's `by` names it; the nonce tells it from an earlier process that had the same pid. */
const THIS_PROCESS = `${process.pid} ${HOST} ${randomBytes(6).toString('hex')}`;

/** Whether the process that granted a lock is gone. One on another host is not known: its locks end by timeout. */
function grantorGone(by: string): boolean {
  const [pid, host] = by.split(' ');
  if (host !== HOST) return false;
  if (Number(pid) === process.pid) return by !== THIS_PROCESS;
  return !processAlive(Number(pid));
}

/** How long whether a grantor is alive is taken as known (finding out is a kill(2)). */
const GRANTOR_CHECK_MS = 1000;

/** The locks as the journal says they are, less those expired or orphaned, and how each change applies to them. */
class LockTable implements JournalState<LockOp> {
  readonly locks = new Map<string, HeldLock>();
  readonly #now: () => number;
  #nextExpiry = Infinity;
  /** Whether the process that granted a lock (its `by`) is gone, as found since #grantorsChecked. */
  readonly #gone = new Map<string, boolean>();
  #grantorsChecked = -Infinity;

  constructor(now: () => number) {
    this.#now = now;
  }

  get size(): number {
    this.purge();
    return this.locks.size;
  }

  snapshot(): LockOp[] {
    this.purge();
    return [...this.locks.values()].map((l) => ({ add: l }));
  }

  clear(): void {
    this.locks.clear();
    this.#nextExpiry = Infinity;
  }

  apply(op: LockOp): void {
    if ('add' in op) {
      this.locks.set(op.add.token, op.add);
      this.#nextExpiry = Math.min(this.#nextExpiry, op.add.expires);
    } else if ('ext' in op) {
      const [token, timeout, expires] = op.ext;
      const lock = this.locks.get(token);
      if (!lock) return;
      lock.timeout = timeout;
      lock.expires = expires;
      this.#nextExpiry = Math.min(this.#nextExpiry, expires);
    } else if ('rm' in op) {
      for (const token of op.rm) this.locks.delete(token);
    } else {
      for (const l of [...this.locks.values()]) if (isWithin(l.path, op.rmw)) this.locks.delete(l.token);
    }
  }

  /** Drop expired locks, and those of processes that are gone (each grantor looked for again once a second). */
  purge(): void {
    const now = this.#now();
    if (now >= this.#nextExpiry) {
      let next = Infinity;
      for (const l of this.locks.values()) {
        if (l.expires <= now) this.locks.delete(l.token);
        else next = Math.min(next, l.expires);
      }
      this.#nextExpiry = next;
    }
    if (now - this.#grantorsChecked >= GRANTOR_CHECK_MS) {
      this.#grantorsChecked = now;
      this.#gone.clear();
    }
    for (const l of this.locks.values()) {
      if (l.by === THIS_PROCESS) continue;
      let gone = this.#gone.get(l.by);
      if (gone === undefined) this.#gone.set(l.by, (gone = grantorGone(l.by)));
      if (gone) this.locks.delete(l.token);
    }
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

  private constructor(table: LockTable, journal: SharedJournal<LockOp>, opts: Required<LockManagerOptions>, log: Logger) {
    this.#table = table;
    this.#journal = journal;
    this.#opts = opts;
    this.#log = log;
  }

  /** Open (and replay) the lock journal at `file`, or keep the locks in memory only when `file` is null. */
  static async open(file: string | null, log: Logger, limits: LockManagerOptions, journal: SharedJournalOptions = {}): Promise<LockManager> {
    const opts = { now: Date.now, ...limits };
    const table = new LockTable(opts.now);
    return new LockManager(table, await SharedJournal.open(file, table, { what: 'lock store', code: 'DAV_ERR_LOCKSTORE' }, log, journal), opts, log);
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
        throw new DavError(503, 'DAV_ERR_TOO_MANY_LOCKS', `the server holds ${this.#opts.maxLocks} locks already (option maxLocks)`);
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
   * Release the locks this manager granted (the server is going away: nobody could refresh them), then close the
   * journal. A lock store that cannot be written then is not worth failing the shutdown for: the others drop the
   * locks of a process that is gone anyway.
   */
  async close(): Promise<void> {
    const mine = [...this.#mine];
    this.#mine.clear();
    if (mine.length) {
      await this.#journal
        .commit(() => {
          const held = mine.filter((t) => this.#table.locks.has(t));
          return held.length ? { rm: held } : null;
        })
        .catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, "could not release this server's WebDAV locks; they end with the process"));
    }
    await this.#journal.close();
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
