import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { writeCpio } from './cpio.js';
import { ensureBootKernel, type BootKernel } from './kernel.js';
import { RootFs } from './rootfs.js';
import {
  AGENT_PATH, AGENT_SCRIPT, AVAHI_CONFIG, DBUS_CONFIG, INIT_SCRIPT, MODULE_LIST_PATH,
} from './guest-scripts.js';
import { buildRoot as defaultBuildRoot, repoRoot } from '../paths.js';

/** A bootable guest: the host's kernel and an initramfs holding the test userland and a spicedav build. */
export interface GuestImage {
  kernel: BootKernel;
  initrd: string;
  /** Bytes of the initramfs. */
  size: number;
  /** True when this call built (part of) the image, false when the cache had it. */
  built: boolean;
}

/** Where images are cached between runs (gitignored). */
export const defaultCacheDir = join(repoRoot, '.cache', 'vm');

/**
 * Kernel modules the guest needs for the virtio port (6.1: virtio_pci is split into legacy/modern helpers);
 * their dependencies come from modules.dep.
 */
const MODULES = ['virtio_pci', 'virtio_console'];

/** Host programs copied with their libraries, and the Debian package to install when one is missing. */
const PROGRAMS: Array<[program: string, debianPackage: string]> = [
  ['node', 'nodejs'], ['curl', 'curl'], ['spice-webdavd', 'spice-webdavd'], ['dbus-daemon', 'dbus'],
  ['avahi-daemon', 'avahi-daemon'],
];

/**
 * Returns the guest image for the spicedav build in `buildRoot`, building what the cache lacks. Two layers,
 * each cached under the hash of its inputs (paths, sizes and mtimes of host files, generated files' bytes):
 * the system layer (busybox, kernel modules, node, curl, litmus, spice-webdavd + dbus + avahi, /init, the
 * agent; about 170 MB, rebuilt only when a package changes) and the spicedav layer (the build's src, mux and
 * dav trees + the production node_modules; a few MB, rebuilt after every compile). The initramfs is the two
 * uncompressed cpio archives back to back: the kernel unpacks concatenated archives in order, and an
 * uncompressed one boots faster under TCG than any decompressor runs. The kernel is the host's, unpacked once
 * (see ensureBootKernel).
 */
export async function ensureGuestImage(options: { buildRoot?: string; cacheDir?: string } = {}): Promise<GuestImage> {
  const cacheDir = options.cacheDir ?? defaultCacheDir;
  await mkdir(cacheDir, { recursive: true });
  const kernel = await ensureBootKernel(cacheDir);
  const system = systemLayer(kernel.version);
  const app = appLayer(options.buildRoot ?? defaultBuildRoot);
  const systemHash = hash(system.fingerprint());
  const appHash = hash(app.fingerprint());
  let built = false;

  const systemFile = join(cacheDir, `system-${systemHash}.cpio`);
  if (!existsSync(systemFile)) {
    await writeLayer(system, systemFile);
    built = true;
  }
  const initrd = join(cacheDir, `initrd-${systemHash}-${appHash}.cpio`);
  if (!existsSync(initrd)) {
    const appFile = join(cacheDir, `app-${appHash}.cpio`);
    await writeLayer(app, appFile);
    const tmp = `${initrd}.${process.pid}.tmp`;
    execFileSync('sh', ['-c', 'cat "$1" "$2" > "$3"', 'cat', systemFile, appFile, tmp]);
    await rename(tmp, initrd);
    await rm(appFile, { force: true });
    built = true;
  }
  await pruneCache(cacheDir, [systemFile, initrd]);
  return { kernel, initrd, size: (await stat(initrd)).size, built };
}

function which(program: string, debianPackage: string): string {
  try {
    return execFileSync('sh', ['-c', 'command -v "$1"', 'which', program], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`${program} is needed in the guest image: apt-get install ${debianPackage}`);
  }
}

function systemLayer(kernelVersion: string): RootFs {
  const fs = new RootFs();
  for (const d of ['/proc', '/sys', '/dev', '/run', '/tmp', '/root', '/etc', '/var']) fs.addDir(d);
  fs.addSymlink('/var/run', '/run');
  fs.addCharDev('/dev/console', 5, 1);
  // Debian's merged /usr: the top-level links, so that paths ldd prints (/lib/..., /lib64/...) resolve.
  for (const top of ['/bin', '/sbin', '/lib', '/lib64']) if (lstatSync(top).isSymbolicLink()) fs.addHostPath(top);

  for (const m of moduleLoadOrder(kernelVersion, MODULES)) fs.addHostPath(m);
  fs.addData(MODULE_LIST_PATH, moduleLoadOrder(kernelVersion, MODULES).join('\n') + '\n');

  for (const [program, pkg] of PROGRAMS) fs.addElf(which(program, pkg));
  // litmus is a shell script running one binary per suite from libexec, with its test documents in share.
  fs.addHostPath(which('litmus', 'litmus'));
  for (const suite of readdirSync('/usr/libexec/litmus')) fs.addElf(`/usr/libexec/litmus/${suite}`);
  fs.addHostTree('/usr/share/litmus');

  fs.addData('/init', INIT_SCRIPT, 0o755);
  fs.addData(AGENT_PATH, AGENT_SCRIPT, 0o755);
  fs.addData('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nmessagebus:x:100:101::/run/dbus:/bin/false\navahi:x:101:102::/run/avahi-daemon:/bin/false\n');
  fs.addData('/etc/group', 'root:x:0:\nmessagebus:x:101:\navahi:x:102:\n');
  fs.addData('/etc/hosts', '127.0.0.1 localhost\n::1 localhost\n');
  fs.addData('/etc/machine-id', 'a5a1ced0a5a1ced0a5a1ced0a5a1ced0\n');
  fs.addData('/etc/dbus-1/spicedav-system.conf', DBUS_CONFIG);
  fs.addData('/etc/avahi/avahi-daemon.conf', AVAHI_CONFIG);

  // busybox last: its applets fill the names the Debian programs above did not take.
  const busybox = realpathSync(which('busybox', 'busybox-static'));
  fs.addHostPath(busybox);
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) if (!fs.has(`/usr/bin/${a}`) && !fs.has(`/usr/sbin/${a}`)) fs.addSymlink(`/usr/bin/${a}`, busybox);
  return fs;
}

/** The modules to insmod, dependencies first, as absolute host paths. */
function moduleLoadOrder(kernelVersion: string, wanted: string[]): string[] {
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
    if (!mod) throw new Error(`kernel module ${name} not found in ${base}/modules.dep`);
    visit(mod);
  }
  return order.map((m) => `${base}/${m}`);
}

/** Folder names inside node_modules packages that are never loaded at run time. */
const SKIPPED_PACKAGE_DIRS = new Set(['test', 'tests', 'docs', 'benchmarks', 'bench', 'example', 'examples', '.github']);

function appLayer(buildRoot: string): RootFs {
  const fs = new RootFs();
  fs.addDir('/spicedav/dist');
  fs.addData('/spicedav/package.json', readFileSync(join(repoRoot, 'package.json')));
  const skipBuild = (name: string): boolean => name.endsWith('.map') || name.endsWith('.d.ts') || name.endsWith('.tsbuildinfo');
  for (const dir of ['src', 'mux', 'dav']) {
    const p = join(buildRoot, dir);
    if (existsSync(p)) addTreeAs(fs, p, `/spicedav/dist/${dir}`, skipBuild);
  }
  const skipPackage = (name: string, isDir: boolean): boolean =>
    isDir ? SKIPPED_PACKAGE_DIRS.has(name) : /\.(md|map|d\.[cm]?ts)$/i.test(name);
  for (const pkg of productionPackages()) addTreeAs(fs, join(repoRoot, pkg), `/spicedav/${pkg}`, skipPackage);
  return fs;
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

/** node_modules paths (relative to the checkout) of the production dependency closure, from npm itself. */
function productionPackages(): string[] {
  let out: string;
  try {
    out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (err) {
    // npm ls exits 1 on an extraneous or invalid package but still prints the tree it found.
    out = String((err as { stdout?: string }).stdout ?? '');
  }
  const prefix = repoRoot.endsWith('/') ? repoRoot : `${repoRoot}/`;
  const pkgs = out.split('\n').filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
  if (!pkgs.length) throw new Error('npm ls found no production dependencies: run npm ci');
  return pkgs;
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
    if (keep.includes(p) || !/^(system|app|initrd)-[0-9a-f-]+\.cpio$/.test(name)) continue;
    const st = await stat(p).catch(() => null);
    if (st && Date.now() - st.mtimeMs > STALE_IMAGE_MS) await rm(p, { force: true });
  }
}

const hash = (lines: string[]): string => createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
