/**
 * The single place that decides what a URL means on disk and whether it stays inside the share.
 *
 * Two steps, kept apart on purpose:
 * 1. `parseUrlPath` (pure): percent-decodes each segment of a request path strictly (bad escapes and invalid
 *    UTF-8 are 400) and refuses anything that could climb out or confuse the host: `.`/`..` segments in any
 *    encoding, an encoded slash (`%2f`), a raw backslash, NUL, and fragments. An encoded backslash (`%5c`) is
 *    an ordinary character of a name on POSIX hosts (Linux file names may contain it) and refused on Windows
 *    hosts, where it separates paths. The result is a normalised DAV path: `/` or `/a/b` (decoded, no trailing
 *    slash, no empty segments).
 * 2. `Confinement.resolve` (I/O): maps that path under the share root and checks symlinks with realpath at use
 *    time. Policy `never` (default) refuses any path that passes through a symlink; `inside` follows a link only
 *    when its real target is inside the real root. A dangling link is always refused, so nothing can be
 *    created through one.
 */
import { realpathSync } from 'node:fs';
import { DavError, badRequest, forbidden, fsError } from './errors.js';
import type { Stats } from 'node:fs';
import type { Io } from './storage/io.js';

/** How symlinks met under the share root are treated. */
export type SymlinkPolicy = 'never' | 'inside';

/** A request path after `parseUrlPath`: `/` or `/seg/seg` with decoded segments. */
export type DavPath = string;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decode one path segment: strict `%XX` escapes, UTF-8 that must be valid. */
function decodeSegment(raw: string): string {
  if (!raw.includes('%')) return raw;
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      const hex = raw.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw badRequest('DAV_ERR_BAD_PATH', `bad percent-escape in path segment "${raw}"`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      bytes.push(...Buffer.from(raw[i] ?? '', 'utf8'));
    }
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch (err) {
    throw badRequest('DAV_ERR_BAD_PATH', `path segment "${raw}" is not valid UTF-8 once decoded`, err);
  }
}

/**
 * Whether `\` separates paths on this host. Only on Windows: elsewhere it is an ordinary character of a file
 * name, and a share may hold such files (a listing shows them, so they must be addressable).
 */
const BACKSLASH_SEPARATES = process.platform === 'win32';

/** True when a decoded segment is refused: it could climb out of the share or be read differently by the host. */
function badSegment(seg: string): boolean {
  return seg === '.' || seg === '..' || seg.includes('/') || seg.includes('\0') || (BACKSLASH_SEPARATES && seg.includes('\\'));
}

/** The shape of the server's temporaries' names (uploads and copies in progress), written once for all uses. */
const TEMP = String.raw`\.spicedav-[0-9a-f]{16}\.part`;
/** Names of the server's temporaries: hidden from listings, never addressable. */
export const TEMP_NAME = new RegExp(`^${TEMP}$`);
/** A path with a TEMP_NAME segment. */
const TEMP_SEGMENT = new RegExp(`/${TEMP}(?:/|$)`);

/** The temporary's name for `id`, 16 hex digits (a TEMP_NAME). */
export function tempNameOf(id: string): string {
  return `.spicedav-${id}.part`;
}

/** Requests may not name a temporary: reading a half-written upload, or writing to its name, is refused. */
function checkNotTemporary(path: DavPath): DavPath {
  if (TEMP_SEGMENT.test(path)) throw new DavError(403, 'DAV_ERR_RESERVED_NAME', `${path}: names like .spicedav-<hex>.part belong to the server's uploads in progress`);
  return path;
}

/** Origin-form paths that need no decoding: unreserved characters and sub-delims, single slashes. */
const PLAIN = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+\/?$|^\/$/;
/** A `.` or `..` segment. */
const DOTS = /\/\.\.?(?:\/|$)/;

/**
 * Turn the path part of a request target (or of a Destination URL) into a DAV path. Accepts origin-form
 * (`/a/b?q`) and absolute-form (`http://host/a/b`); the query is ignored. Throws DavError 400 on anything unsafe.
 */
export function parseUrlPath(target: string): { path: DavPath; trailingSlash: boolean } {
  // Fast path for the common case (checked once per request): plain characters only, no dot segment.
  if (PLAIN.test(target) && !DOTS.test(target)) {
    const trailingSlash = target.length > 1 && target.endsWith('/');
    return { path: checkNotTemporary(trailingSlash ? target.slice(0, -1) : target), trailingSlash };
  }
  let raw = target;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(raw);
  if (abs) raw = raw.slice(abs[0].length) || '/';
  if (raw.includes('#')) throw badRequest('DAV_ERR_BAD_PATH', 'a request URI must not carry a fragment (#)');
  const q = raw.indexOf('?');
  if (q >= 0) raw = raw.slice(0, q);
  if (!raw.startsWith('/')) throw badRequest('DAV_ERR_BAD_PATH', `path "${raw}" must start with /`);
  // A raw backslash is not a URI character: a client that sends one may mean a separator. `%5c` is unambiguous.
  if (raw.includes('\\')) throw badRequest('DAV_ERR_BAD_PATH', 'a raw backslash is not allowed in paths (send it as %5C)');
  const segments: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '') continue;
    const seg = decodeSegment(part);
    if (badSegment(seg)) throw badRequest('DAV_ERR_BAD_PATH', `path segment "${part}" is not allowed (dot segment, encoded slash, NUL${BACKSLASH_SEPARATES ? ' or backslash' : ''})`);
    segments.push(seg);
  }
  return { path: checkNotTemporary('/' + segments.join('/')), trailingSlash: raw.length > 1 && raw.endsWith('/') };
}

/** The parent of a DAV path (`/` for top-level entries and for `/` itself). */
export function parentOf(path: DavPath): DavPath {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** The last segment of a DAV path ('' for the root). */
export function nameOf(path: DavPath): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Join a DAV path and a child name. */
export function childOf(path: DavPath, name: string): DavPath {
  return path === '/' ? `/${name}` : `${path}/${name}`;
}

/** True when `inner` is `outer` or below it. */
export function isWithin(inner: DavPath, outer: DavPath): boolean {
  return outer === '/' || inner === outer || inner.startsWith(outer + '/');
}

/** Paths whose segments encodeURIComponent would leave unchanged. */
const SAFE_HREF = /^[A-Za-z0-9\-_.!~*'()/]*$/;

/** Percent-encode a DAV path for use in an href or a Location header; collections get a trailing slash. */
export function hrefOf(path: DavPath, collection: boolean): string {
  // Most names need no escaping (checked with one test instead of splitting and encoding each segment).
  const enc = path === '/' || SAFE_HREF.test(path) ? path : path.split('/').map(encodeURIComponent).join('/');
  return collection && !enc.endsWith('/') ? enc + '/' : enc;
}

/** Where a DAV path lives on disk, once checked. */
export interface Resolved {
  /** The real path to read or write through (links the policy allows are followed). */
  target: string;
  /** The directory entry itself (parent resolved, last name as is): what DELETE and MOVE act on. */
  entry: string;
  /** False when nothing exists there yet (a PUT, MKCOL or LOCK may create it). */
  exists: boolean;
  /** When `exists` is false: whether the parent exists and is a directory (else creating is a 409). */
  parentIsDir: boolean;
  /** The stats of `target` taken while resolving (when it exists), so callers need no second stat. */
  stats?: Stats;
}

/**
 * Maps DAV paths to real paths under one root, enforcing the symlink policy. The root is realpath'd once;
 * every resolution lstats each name below it, at use time (a link on the way is realpath'd and checked), for a
 * path that exists or not, and the last lstat doubles as the stat of the resource.
 */
export class Confinement {
  /** The real, absolute share root (no trailing slash unless it is `/`). */
  readonly root: string;
  readonly policy: SymlinkPolicy;
  readonly #prefix: string;
  readonly #io: Pick<Io, 'realpath' | 'lstat' | 'stat'>;

  constructor(root: string, policy: SymlinkPolicy, io: Pick<Io, 'realpath' | 'lstat' | 'stat'>) {
    this.#io = io;
    try {
      this.root = realpathSync.native(root);
    } catch (err) {
      throw new DavError(500, 'DAV_ERR_ROOT', `the share root ${root} cannot be opened; check that it exists and is a directory`, { cause: err });
    }
    this.policy = policy;
    this.#prefix = this.root.endsWith('/') ? this.root : this.root + '/';
  }

  /** The lexical disk path of a DAV path (no checks; only for messages and for building children). */
  lexical(path: DavPath): string {
    return path === '/' ? this.root : this.#prefix + path.slice(1);
  }

  /** True when a real path is the root or below it. */
  contains(real: string): boolean {
    return real === this.root || real.startsWith(this.#prefix);
  }

  /** Resolve a DAV path, refusing (403) any path the symlink policy forbids. */
  async resolve(path: DavPath): Promise<Resolved> {
    if (path === '/') return { target: this.root, entry: this.root, exists: true, parentIsDir: true, stats: await this.#rootStats() };
    const dir = await this.#directory(parentOf(path));
    const target = `${dir.real === '/' ? '' : dir.real}/${nameOf(path)}`;
    // Something missing on the way may mean the root itself is gone; a parent found below it means it is not.
    if (!dir.exists) {
      await this.#rootStats();
      return { target, entry: target, exists: false, parentIsDir: false };
    }
    let st: Stats;
    try {
      st = await this.#io.lstat(target);
    } catch (err) {
      const c = (err as NodeJS.ErrnoException).code;
      if (c === 'ENOENT') {
        if (dir.real === this.root) await this.#rootStats();
        return { target, entry: target, exists: false, parentIsDir: true };
      }
      if (c === 'ENOTDIR') return { target, entry: target, exists: false, parentIsDir: false };
      throw fsError(err, path);
    }
    if (!st.isSymbolicLink()) return { target, entry: target, exists: true, parentIsDir: true, stats: st };
    if (this.policy === 'never') throw this.#linkRefused(path);
    let real: string;
    try {
      real = await this.#io.realpath(target);
    } catch {
      // A dangling (or looping) link: creating through it could write wherever it points.
      throw this.#linkRefused(path);
    }
    if (!this.contains(real)) throw this.#linkRefused(path);
    try {
      return { target: real, entry: target, exists: true, parentIsDir: true, stats: await this.#io.stat(real) };
    } catch (err) {
      throw fsError(err, path);
    }
  }

  /**
   * The root's stats, or 503 when it is gone (deleted, moved or unmounted on the host, a USB disk pulled out):
   * every request then says so, rather than 404 for each name, and serving resumes when the folder is back.
   */
  async #rootStats(): Promise<Stats> {
    try {
      return await this.#io.stat(this.root);
    } catch (err) {
      throw new DavError(503, 'DAV_ERR_ROOT', `the share root ${this.root} has disappeared (deleted, moved or unmounted on the host)`, { cause: err });
    }
  }

  /**
   * The real path of a directory on the way, and whether it exists; links as the policy says. The common case,
   * no link anywhere below the root, costs one lstat per level below the root, which was realpath'd once: a
   * realpath would read every directory from `/` down again, four to six calls more for each request. The first
   * link met hands the path to #throughLink, which resolves it with realpath and applies the policy.
   */
  async #directory(path: DavPath): Promise<{ real: string; exists: boolean }> {
    let real = this.root;
    if (path === '/') return { real, exists: true };
    for (const name of path.slice(1).split('/')) {
      const next = `${real === '/' ? '' : real}/${name}`;
      let st: Stats;
      try {
        st = await this.#io.lstat(next);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw fsError(err, path);
        // Everything above is a real directory, so the missing path is where it reads.
        return { real: this.lexical(path), exists: false };
      }
      if (st.isSymbolicLink()) return this.#throughLink(path);
      if (!st.isDirectory()) return { real: this.lexical(path), exists: false };
      real = next;
    }
    return { real, exists: true };
  }

  /** #directory for a path with a link on the way: realpath it, and check where it leads. */
  async #throughLink(path: DavPath): Promise<{ real: string; exists: boolean }> {
    const lexical = this.lexical(path);
    try {
      const real = await this.#io.realpath(lexical);
      if (real !== lexical && (this.policy === 'never' || !this.contains(real))) throw this.#linkRefused(path);
      return { real, exists: true };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err instanceof DavError ? err : fsError(err, path);
    }
    // Missing: resolve its parent so that a link further up is still refused, and report the path as missing.
    const up = await this.#directory(parentOf(path));
    return { real: `${up.real === '/' ? '' : up.real}/${nameOf(path)}`, exists: false };
  }

  #linkRefused(path: DavPath): DavError {
    return forbidden(
      this.policy === 'never'
        ? `${path} goes through a symbolic link; the share does not follow links (option followSymlinks: 'inside')`
        : `${path} goes through a symbolic link that leads outside the share`,
    );
  }
}
