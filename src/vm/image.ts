import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, join, relative, sep } from 'node:path';
import { writeCpio } from './cpio.js';
import { ensureBootKernel, type BootKernel } from './kernel.js';
import { RootFs } from './rootfs.js';
import { MissingPackagesError, requirePrograms } from './requirements.js';

/** A bootable guest: the host's kernel and an initramfs assembled from host files. */
export interface GuestImage {
  kernel: BootKernel;
  initrd: string;
  /** Bytes of the initramfs. */
  size: number;
  /** True when this call built (part of) the image, false when the cache had it. */
  built: boolean;
}

/**
 * One layer of an initramfs: a named file tree built from host files. Layers are cached separately under the
 * hash of their inputs (RootFs.fingerprint), so a layer that changes often (the spicedav build) does not
 * rebuild one that rarely does (the system: busybox, node, kernel modules).
 */
export interface ImageLayer {
  /** Lower-case letters only: the cache file's prefix. */
  name: string;
  build(kernel: BootKernel): RootFs;
}

/** The file listing the kernel modules /init loads, in dependency order (see systemBase). */
export const MODULE_LIST_PATH = '/etc/spicedav/modules';

/**
 * Kernel modules a guest needs for the virtio ports (6.1: virtio_pci is split into legacy/modern helpers);
 * their dependencies come from modules.dep.
 */
export const VIRTIO_PORT_MODULES = ['virtio_pci', 'virtio_console'];

/**
 * Returns the initramfs made of `layers` for the host's kernel, building what `cacheDir` lacks. The initramfs
 * is the layers' uncompressed cpio archives back to back: the kernel unpacks concatenated archives in order
 * (a later layer's file replaces an earlier one's), and an uncompressed archive boots faster under TCG than any
 * decompressor runs. The kernel is the host's, unpacked once (see ensureBootKernel). Superseded files in
 * `cacheDir` are removed after a while.
 */
export async function ensureImage(layers: ImageLayer[], cacheDir: string): Promise<GuestImage> {
  await mkdir(cacheDir, { recursive: true });
  const kernel = await ensureBootKernel(cacheDir);
  const built: string[] = [];
  const files: string[] = [];
  const trees = layers.map((l) => ({ layer: l, fs: l.build(kernel) }));
  const hashes = trees.map(({ fs }) => hash(fs.fingerprint()));
  const initrd = join(cacheDir, `initrd-${hashes.join('-')}.cpio`);
  if (!existsSync(initrd)) {
    for (const [i, { layer, fs }] of trees.entries()) {
      const file = join(cacheDir, `${layer.name}-${hashes[i]}.cpio`);
      if (!existsSync(file)) {
        await writeLayer(fs, file);
        built.push(file);
      }
      files.push(file);
    }
    const tmp = `${initrd}.${process.pid}.tmp`;
    execFileSync('sh', ['-c', 'out="$1"; shift; cat "$@" > "$out"', 'cat', tmp, ...files]);
    await rename(tmp, initrd);
    // A layer used only here (the spicedav build) is not worth keeping apart from the initrd holding it.
    for (const f of built) if (f !== files[0]) await rm(f, { force: true });
  }
  const keep = [initrd, ...trees.map(({ layer }, i) => join(cacheDir, `${layer.name}-${hashes[i]}.cpio`))];
  await pruneCache(cacheDir, keep);
  return { kernel, initrd, size: (await stat(initrd)).size, built: built.length > 0 };
}

/**
 * The skeleton every guest needs: the pseudo file system mount points, /dev/console, Debian's merged-/usr
 * links (so that the paths ldd prints resolve), `modules` (default: the virtio port drivers) with their
 * dependencies, listed in load order at MODULE_LIST_PATH, and a root user.
 */
export function systemBase(kernel: BootKernel, modules: string[] = VIRTIO_PORT_MODULES): RootFs {
  const fs = new RootFs();
  for (const d of ['/proc', '/sys', '/dev', '/run', '/tmp', '/root', '/etc', '/var']) fs.addDir(d);
  fs.addSymlink('/var/run', '/run');
  fs.addCharDev('/dev/console', 5, 1);
  for (const top of ['/bin', '/sbin', '/lib', '/lib64']) if (lstatSync(top).isSymbolicLink()) fs.addHostPath(top);
  const order = moduleLoadOrder(kernel.version, modules);
  for (const m of order) fs.addHostPath(m);
  fs.addData(MODULE_LIST_PATH, order.join('\n') + '\n');
  fs.addData('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  fs.addData('/etc/group', 'root:x:0:\n');
  fs.addData('/etc/hosts', '127.0.0.1 localhost\n::1 localhost\n');
  return fs;
}

/**
 * Adds host programs with their shared libraries. Throws a MissingPackagesError naming the Debian packages
 * of every program not on PATH. `optional` programs are added when present and skipped silently otherwise.
 */
export function addPrograms(fs: RootFs, programs: Array<[program: string, debianPackage: string]>, optional: string[] = []): void {
  const required = programs.filter(([p]) => !optional.includes(p));
  const found = requirePrograms(required);
  for (const [p] of programs) {
    const path = found.get(p) ?? (optional.includes(p) ? tryFind(p) : undefined);
    if (path) fs.addElf(path);
  }
}

function tryFind(program: string): string | undefined {
  try {
    return requirePrograms([[program, program]]).get(program);
  } catch {
    return undefined;
  }
}

/**
 * Adds the host's static busybox and links every applet whose name no program added before took. Call it
 * last, so that Debian's programs (curl, node...) win over the applets of the same name.
 */
export function addBusybox(fs: RootFs): void {
  const busybox = realpathSync(requirePrograms([['busybox', 'busybox-static']]).get('busybox')!);
  fs.addHostPath(busybox);
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) if (!fs.has(`/usr/bin/${a}`) && !fs.has(`/usr/sbin/${a}`)) fs.addSymlink(`/usr/bin/${a}`, busybox);
}

/** The modules to insmod, dependencies first, as absolute host paths. */
export function moduleLoadOrder(kernelVersion: string, wanted: string[]): string[] {
  const base = `/lib/modules/${kernelVersion}`;
  const deps = new Map<string, string[]>();
  for (const line of readFileSync(`${base}/modules.dep`, 'utf8').split('\n')) {
    const [mod, rest] = line.split(':');
    if (mod && rest !== undefined) deps.set(mod, rest.trim().split(/\s+/).filter(Boolean));
  }
  const byName = new Map([...deps.keys()].map((m) => [m.replace(/^.*\//, '').replace(/\.ko(\..*)?$/, ''), m]));
  const order: string[] = [];
  const visit = (mod: string): void => {
    if (order.includes(mod)) return;
    // modules.dep lists every transitive dependency, the ones loaded last first.
    for (const d of [...(deps.get(mod) ?? [])].reverse()) visit(d);
    order.push(mod);
  };
  for (const name of wanted) {
    const mod = byName.get(name);
    if (!mod) throw new MissingPackagesError([`kernel module ${name} (${base})`], ['linux-image-amd64']);
    visit(mod);
  }
  return order.map((m) => `${base}/${m}`);
}

/** Folder names inside node_modules packages that are never loaded at run time. */
const SKIPPED_PACKAGE_DIRS = new Set(['test', 'tests', 'docs', 'benchmarks', 'bench', 'example', 'examples', '.github']);

/**
 * The spicedav layer: the compiled src, mux and dav trees of `buildRoot` (dist/ or a .build/<area>/ dir) at
 * /spicedav/dist, package.json, and the production dependency closure of `packageRoot` at
 * /spicedav/node_modules. The guest runs `node /spicedav/dist/src/cli/index.js guest`.
 */
export function spicedavLayer(buildRoot: string, packageRoot: string): ImageLayer {
  return {
    name: 'app',
    build() {
      const fs = new RootFs();
      fs.addDir('/spicedav/dist');
      fs.addData('/spicedav/package.json', readFileSync(join(packageRoot, 'package.json')));
      const skipBuild = (name: string): boolean => name.endsWith('.map') || name.endsWith('.d.ts') || name.endsWith('.tsbuildinfo');
      for (const dir of ['src', 'mux', 'dav']) {
        const p = join(buildRoot, dir);
        if (existsSync(p)) addTreeAs(fs, p, `/spicedav/dist/${dir}`, skipBuild);
      }
      const skipPackage = (name: string, isDir: boolean): boolean =>
        isDir ? SKIPPED_PACKAGE_DIRS.has(name) || name === 'node_modules' : /\.(md|map|d\.[cm]?ts)$/i.test(name);
      for (const [host, guest] of productionPackages(packageRoot)) addTreeAs(fs, host, guest, skipPackage);
      return fs;
    },
  };
}

/** Copies a host tree to another guest path (the build dir is not at /spicedav on the host). */
function addTreeAs(fs: RootFs, hostDir: string, guestDir: string, skip: (name: string, isDir: boolean) => boolean): void {
  fs.addDir(guestDir);
  for (const d of readdirSync(hostDir, { withFileTypes: true })) {
    if (skip(d.name, d.isDirectory())) continue;
    const host = join(hostDir, d.name);
    const guest = `${guestDir}/${d.name}`;
    if (d.isDirectory()) addTreeAs(fs, host, guest, skip);
    else if (d.isFile()) fs.addData(guest, readFileSync(host), lstatSync(host).mode & 0o777);
  }
}

/**
 * The production dependency closure of the package at `packageRoot`, as [host dir, guest dir] pairs, found the
 * way Node resolves them (node_modules folders from the requiring package up), so that it works in a checkout
 * and in an installed, hoisted copy alike. A package inside `packageRoot` keeps its relative place; a hoisted
 * one (above it) goes to /spicedav/node_modules/<name>.
 */
function productionPackages(packageRoot: string): Array<[string, string]> {
  const out = new Map<string, string>();
  const visit = (pkgDir: string): void => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>;
    };
    const names = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})];
    for (const name of names) {
      const dir = resolvePackage(pkgDir, name);
      if (!dir) {
        if (pkg.optionalDependencies?.[name]) continue;
        throw new Error(`${name} (a dependency of ${pkgDir}) is not installed: run npm ci`);
      }
      if (out.has(dir)) continue;
      const rel = relative(packageRoot, dir);
      out.set(dir, rel.startsWith('..') ? `/spicedav/node_modules/${name}` : `/spicedav/${rel.split(sep).join('/')}`);
      visit(dir);
    }
  };
  visit(packageRoot);
  return [...out];
}

function resolvePackage(fromDir: string, name: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(dir) === dir) return undefined;
  }
}

async function writeLayer(fs: RootFs, file: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const out = createWriteStream(tmp);
  try {
    await writeCpio(fs.entries(), out);
    out.end();
    await once(out, 'close');
    await rename(tmp, file);
  } catch (err) {
    out.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
}

/** How long a superseded image is kept: another run may be about to boot it. */
const STALE_IMAGE_MS = 10 * 60_000;

/** Deletes superseded layers, so that the cache holds about one image rather than one per build. */
async function pruneCache(cacheDir: string, keep: string[]): Promise<void> {
  for (const name of readdirSync(cacheDir)) {
    const p = join(cacheDir, name);
    if (keep.includes(p) || !/^[a-z]+-[0-9a-f-]+\.cpio$/.test(name)) continue;
    const st = await stat(p).catch(() => null);
    if (st && Date.now() - st.mtimeMs > STALE_IMAGE_MS) await rm(p, { force: true });
  }
}

const hash = (lines: string[]): string => createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
