import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MissingPackagesError } from './requirements.js';

/** The kernel to boot and what it is. */
export interface BootKernel {
  version: string;
  /** An uncompressed ELF vmlinux (PVH entry) when extraction worked, else the distribution's bzImage. */
  path: string;
  /** Why the bzImage is used, when it is. */
  note?: string;
}

/** The newest installed kernel that has its modules (the guest loads virtio modules of that exact version). */
export function pickKernelVersion(): string {
  const versions = readdirSync('/boot')
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => existsSync(`/lib/modules/${v}/modules.dep`))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const v = versions.at(-1);
  if (!v) throw new MissingPackagesError(['a kernel (/boot/vmlinuz-* with its /lib/modules)'], ['linux-image-amd64']);
  return v;
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/**
 * Returns the kernel to boot, extracting Debian's xz-compressed bzImage payload into `cacheDir` once per
 * kernel build. Why: under TCG the bzImage's own decompressor takes about 6 s of every boot, while QEMU
 * loads the uncompressed ELF directly through its PVH entry (Debian builds CONFIG_PVH) in well under one.
 */
export async function ensureBootKernel(cacheDir: string): Promise<BootKernel> {
  const version = pickKernelVersion();
  const bzImage = `/boot/vmlinuz-${version}`;
  const st = statSync(bzImage);
  const out = join(cacheDir, `vmlinux-${version}-${st.size}-${Math.trunc(st.mtimeMs)}`);
  if (existsSync(out)) return { version, path: out };
  const image = readFileSync(bzImage);
  const at = image.indexOf(XZ_MAGIC);
  if (at < 0) return { version, path: bzImage, note: 'no xz payload in the bzImage (booting it compressed, ~6 s slower)' };
  const xz = spawnSync('xz', ['-dc', '--single-stream'], { input: image.subarray(at), maxBuffer: 512 * 1024 * 1024 });
  if (xz.status !== 0 || !xz.stdout?.subarray(0, 4).equals(ELF_MAGIC)) {
    const why = xz.error ? 'xz is not installed (apt-get install xz-utils)' : `xz failed: ${xz.stderr?.toString().trim()}`;
    return { version, path: bzImage, note: `${why}; booting the compressed kernel, ~6 s slower` };
  }
  for (const old of readdirSync(cacheDir)) if (old.startsWith('vmlinux-')) await rm(join(cacheDir, old), { force: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await writeFile(tmp, xz.stdout);
  await rename(tmp, out);
  return { version, path: out };
}
