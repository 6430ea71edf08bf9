import type { Logger } from '../src/log.js';
import type { SymlinkPolicy } from './paths.js';
import type { LoginThrottleOptions } from './auth/login-throttle.js';
import { DEFAULT_ORPHAN_GRACE } from './locks.js';

/** Limits of a DavServer. Every one is a named option; the defaults are below in `DEFAULT_LIMITS`. */
export interface DavLimits {
  /** Largest XML request body (PROPFIND, PROPPATCH, LOCK) in bytes; more is a 413. */
  maxXmlBytes: number;
  /** Deepest element nesting accepted in an XML body. */
  maxXmlDepth: number;
  /** PROPFIND Depth: infinity answers at most this many resources; beyond it 403 propfind-finite-depth. 0 refuses infinity. */
  maxInfinityEntries: number;
  /** Most ranges served in one multipart/byteranges answer; more (after merging) and the whole file is sent. */
  maxRanges: number;
  /** Lock timeout in seconds when the client asks for none or for Infinite. */
  defaultLockTimeout: number;
  /** Longest lock timeout granted, in seconds. */
  maxLockTimeout: number;
  /** Most locks held at once; more LOCK requests get 503. */
  maxLocks: number;
  /**
   * Seconds a lock outlives the server that granted it (closed or killed) for its client to come back, through a
   * restarted server or another one serving the folder; never past the lock's own timeout. 0: a lock ends with its
   * server.
   */
  orphanLockGrace: number;
  /** Largest PUT body in bytes (Infinity = no limit); more is a 413 and the old file stays. */
  maxUploadBytes: number;
  /** Milliseconds a client may take to send a request's headers (Node's headersTimeout); bodies are never timed. */
  headersTimeout: number;
  /** Idle keep-alive connections are closed after this many ms; 0 never closes them (mux connections live long). */
  keepAliveTimeout: number;
  /** Directories the metadata cache watches at most (least recently used ones are dropped first). */
  maxWatchedDirs: number;
  /** Read size for GET bodies in bytes: large reads keep big downloads near the loopback limit. */
  readChunkBytes: number;
  /** An inline file-system call slower than this (ms) moves the share to the thread pool for a while. */
  inlineIoMaxMs: number;
}

/** The defaults of every limit. */
export const DEFAULT_LIMITS: Readonly<DavLimits> = Object.freeze({
  maxXmlBytes: 1024 * 1024,
  maxXmlDepth: 64,
  maxInfinityEntries: 20_000,
  maxRanges: 32,
  defaultLockTimeout: 3600,
  maxLockTimeout: 7 * 24 * 3600,
  maxLocks: 10_000,
  orphanLockGrace: DEFAULT_ORPHAN_GRACE,
  maxUploadBytes: Infinity,
  headersTimeout: 60_000,
  keepAliveTimeout: 0,
  maxWatchedDirs: 512,
  readChunkBytes: 1024 * 1024,
  inlineIoMaxMs: 5,
});

/** Options of `new DavServer(...)`. */
export interface DavServerOptions extends Partial<DavLimits> {
  /** The folder to share. Must exist; its real path is fixed when the server is made. */
  root: string;
  /** Refuse every write method with 403 (GET, HEAD, OPTIONS, PROPFIND still work). */
  readOnly?: boolean;
  /** 'never' (default): a path through a symlink is refused; 'inside': links whose real target is inside the share are followed. */
  followSymlinks?: SymlinkPolicy;
  /**
   * Where dead properties are persisted, outside the share: a directory, or false to keep them in memory only.
   * Default: `$XDG_STATE_HOME/spicedav` (else `~/.local/state/spicedav`), one file per share root.
   */
  stateDir?: string | false;
  /**
   * Keep an inotify-fed cache of directory listings (see dav/cache.ts for why it is never stale). Default: on
   * for local file systems; off for network ones, where changes made by other machines raise no inotify event.
   */
  cache?: boolean;
  /**
   * Make metadata calls and small reads/writes synchronously instead of through the thread pool (see
   * dav/storage/io.ts), in the share and in the journals of `stateDir`. Default: on for local file systems, off
   * for network and FUSE ones, for the share and the state directory each by its own.
   */
  inlineIo?: boolean;
  /** The Server header; default `spicedav`. */
  serverName?: string;
  /**
   * How listeners with authentication slow down password guessing per source address (dav/auth/login-throttle.ts),
   * or false for not at all (behind a reverse proxy every client has the proxy's address). Default: 10 failures
   * free, then waits of 1 s doubling up to 60 s.
   */
  loginThrottle?: LoginThrottleOptions | false;
  log?: Logger;
}
