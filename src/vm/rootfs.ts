import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import type { CpioEntry } from './cpio.js';

/**
 * The file tree of a guest image being assembled from host files: copies host paths at the same place with
 * their symlinks (Debian's merged /usr, the .so version links) and pulls in an ELF program's shared
 * libraries. Keyed by path, so adding a file twice is harmless; `entries()` lists parents before children.
 */
export class RootFs {
  readonly #entries = new Map<string, CpioEntry>();

  /** Adds a host path (file, symlink chain or bare directory) at the same path in the guest. */
  addHostPath(hostPath: string): void {
    const p = resolve(hostPath);
    if (p === '/' || this.#entries.has(rel(p))) return;
    const parent = dirname(p);
    this.addHostPath(parent);
    // A parent reached through a symlink (/lib -> usr/lib): the link is in place, the file lives behind it.
    const realParent = realpathSync(parent);
    if (realParent !== parent) return this.addHostPath(join(realParent, posix.basename(p)));
    const st = lstatSync(p);
    if (st.isSymbolicLink()) {
      const target = readlinkSync(p);
      this.#entries.set(rel(p), { type: 'symlink', path: rel(p), target });
      this.addHostPath(resolve(parent, target));
    } else if (st.isDirectory()) {
      this.#entries.set(rel(p), { type: 'dir', path: rel(p), mode: st.mode & 0o7777 });
    } else if (st.isFile()) {
      this.#entries.set(rel(p), { type: 'file', path: rel(p), mode: st.mode & 0o7777, source: p, size: st.size });
    }
  }

  /** Adds a host directory with everything under it, skipping names `skip` rejects. */
  addHostTree(hostDir: string, skip: (name: string, isDir: boolean) => boolean = () => false): void {
    this.addHostPath(hostDir);
    for (const d of readdirSync(hostDir, { withFileTypes: true })) {
      if (skip(d.name, d.isDirectory())) continue;
      const p = join(hostDir, d.name);
      if (d.isDirectory()) this.addHostTree(p, skip);
      else this.addHostPath(p);
    }
  }

  /** Adds an ELF program (or library) and every shared library `ldd` resolves for it, loader included. */
  addElf(hostPath: string): void {
    this.addHostPath(hostPath);
    let out: string;
    try {
      out = execFileSync('ldd', [hostPath], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch {
      return; // "not a dynamic executable": a static binary (busybox) or a script (litmus)
    }
    for (const line of out.split('\n')) {
      // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
      const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
      if (m?.[1]) this.addHostPath(m[1]);
      else if (/not found/.test(line)) throw new Error(`${hostPath}: ${line.trim()}`);
    }
  }

  /** Adds a file with the given content (a script, a config) at `guestPath`, creating its directories. */
  addData(guestPath: string, data: string | Buffer, mode = 0o644): void {
    this.addDir(posix.dirname(guestPath));
    this.#entries.set(rel(guestPath), { type: 'file', path: rel(guestPath), mode, data: Buffer.from(data) });
  }

  /** Adds a symlink at `guestPath`, creating its directories. */
  addSymlink(guestPath: string, target: string): void {
    this.addDir(posix.dirname(guestPath));
    this.#entries.set(rel(guestPath), { type: 'symlink', path: rel(guestPath), target });
  }

  /** Adds an empty directory and its parents (unless the path is already there, e.g. as a merged-/usr link). */
  addDir(guestPath: string, mode = 0o755): void {
    if (guestPath === '/' || guestPath === '.' || this.#entries.has(rel(guestPath))) return;
    this.addDir(posix.dirname(guestPath));
    this.#entries.set(rel(guestPath), { type: 'dir', path: rel(guestPath), mode });
  }

  /** Adds a character device node (the kernel opens /dev/console before /init can mount devtmpfs). */
  addCharDev(guestPath: string, major: number, minor: number): void {
    this.addDir(posix.dirname(guestPath));
    this.#entries.set(rel(guestPath), { type: 'chardev', path: rel(guestPath), rdev: [major, minor] });
  }

  /** True when the guest path is already taken. */
  has(guestPath: string): boolean {
    return this.#entries.has(rel(guestPath));
  }

  /** The entries sorted by path, which puts every directory before what it contains. */
  entries(): CpioEntry[] {
    return [...this.#entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * What the archive depends on, for the cache key: every host file's path, size and mtime, and the bytes of
   * every generated file.
   */
  fingerprint(): string[] {
    return this.entries().map((e) => {
      if (e.type === 'file' && 'source' in e) return `${e.path} ${e.size} ${statSync(e.source).mtimeMs}`;
      if (e.type === 'file') return `${e.path} data ${e.data.toString('base64')}`;
      if (e.type === 'symlink') return `${e.path} -> ${e.target}`;
      return `${e.path} ${e.type}`;
    });
  }
}

const rel = (p: string): string => posix.normalize(p).replace(/^\/+/, '');
