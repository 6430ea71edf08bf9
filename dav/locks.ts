/**
 * WebDAV write locks (RFC 4918 §6, §7): exclusive and shared, depth 0 and infinity, held in memory.
 * Timeouts are enforced: an expired lock is dropped before any question is answered, so it can neither block
 * a writer nor show up in lockdiscovery (phodav reports timeouts but never expires anything).
 */
import { randomUUID } from 'node:crypto';
import { DavError } from './errors.js';
import { isWithin, type DavPath } from './paths.js';

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

/** Limits and clock of a LockManager. */
export interface LockManagerOptions {
  defaultTimeout: number;
  maxTimeout: number;
  maxLocks: number;
  /** Clock in ms; tests pass a fake one. */
  now?: () => number;
}

/** The lock table of one share. */
export class LockManager {
  readonly #locks = new Map<string, Lock>();
  readonly #opts: Required<LockManagerOptions>;
  #nextExpiry = Infinity;

  constructor(options: LockManagerOptions) {
    this.#opts = { now: Date.now, ...options };
  }

  /** Locks that apply to `path`: on it, or depth-infinity locks on an ancestor. */
  covering(path: DavPath): Lock[] {
    this.#purge();
    const out: Lock[] = [];
    for (const l of this.#locks.values()) {
      if (l.path === path || (l.depth === 'infinity' && isWithin(path, l.path))) out.push(l);
    }
    return out;
  }

  /** Locks rooted strictly below `path` (what a depth-infinity operation on `path` also touches). */
  below(path: DavPath): Lock[] {
    this.#purge();
    const out: Lock[] = [];
    for (const l of this.#locks.values()) if (l.path !== path && isWithin(l.path, path)) out.push(l);
    return out;
  }

  /** Locks rooted exactly at `path`. */
  at(path: DavPath): Lock[] {
    this.#purge();
    return [...this.#locks.values()].filter((l) => l.path === path);
  }

  /** A live lock by token. */
  get(token: string): Lock | undefined {
    this.#purge();
    return this.#locks.get(token);
  }

  /** The number of live locks. */
  get size(): number {
    this.#purge();
    return this.#locks.size;
  }

  /**
   * Grant a new lock, or throw 423 when it conflicts: an exclusive lock conflicts with any lock covering the
   * resource (or, for depth infinity, below it); a shared one only with exclusive locks.
   */
  create(request: { path: DavPath; depth: 0 | 'infinity'; scope: 'exclusive' | 'shared'; owner: string | null; timeouts: number[] }): Lock {
    const touched = [...this.covering(request.path), ...(request.depth === 'infinity' ? this.below(request.path) : [])];
    const clash = touched.filter((l) => request.scope === 'exclusive' || l.scope === 'exclusive');
    if (clash.length) {
      throw new DavError(423, 'DAV_ERR_LOCKED', `${request.path} is already locked`, {
        condition: { name: 'no-conflicting-lock', hrefs: [] },
      });
    }
    if (this.#locks.size >= this.#opts.maxLocks) {
      throw new DavError(503, 'DAV_ERR_TOO_MANY_LOCKS', `the server holds ${this.#opts.maxLocks} locks already (option maxLocks)`);
    }
    const timeout = this.#choose(request.timeouts);
    const lock: Lock = {
      token: `urn:uuid:${randomUUID()}`,
      path: request.path,
      depth: request.depth,
      scope: request.scope,
      owner: request.owner,
      timeout,
      expires: this.#opts.now() + timeout * 1000,
    };
    this.#locks.set(lock.token, lock);
    this.#nextExpiry = Math.min(this.#nextExpiry, lock.expires);
    return lock;
  }

  /** Extend a lock's timeout (a refresh); the lock must exist. */
  refresh(token: string, timeouts: number[]): Lock {
    const lock = this.get(token);
    if (!lock) throw new DavError(412, 'DAV_ERR_LOCK_GONE', `no lock ${token} (expired or never granted)`, { condition: { name: 'lock-token-matches-request-uri' } });
    lock.timeout = this.#choose(timeouts);
    lock.expires = this.#opts.now() + lock.timeout * 1000;
    this.#nextExpiry = Math.min(this.#nextExpiry, lock.expires);
    return lock;
  }

  /** Release a lock; false when there was none with that token. */
  remove(token: string): boolean {
    return this.#locks.delete(token);
  }

  /** Drop every lock rooted at or below `path` (after the resource was deleted or moved away). */
  removeWithin(path: DavPath): void {
    for (const l of [...this.#locks.values()]) if (isWithin(l.path, path)) this.#locks.delete(l.token);
  }

  /** Seconds left on a lock (rounded up, at least 0). */
  remaining(lock: Lock): number {
    return Math.max(0, Math.ceil((lock.expires - this.#opts.now()) / 1000));
  }

  /** The first timeout the client asked for that we can grant, capped; the default when it asked for none. */
  #choose(timeouts: number[]): number {
    const wish = timeouts.find((t) => t > 0);
    if (wish === undefined || wish === Infinity) return Math.min(this.#opts.defaultTimeout, this.#opts.maxTimeout);
    return Math.min(wish, this.#opts.maxTimeout);
  }

  #purge(): void {
    const now = this.#opts.now();
    if (now < this.#nextExpiry) return;
    let next = Infinity;
    for (const l of [...this.#locks.values()]) {
      if (l.expires <= now) this.#locks.delete(l.token);
      else next = Math.min(next, l.expires);
    }
    this.#nextExpiry = next;
  }
}
