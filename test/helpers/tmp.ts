import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { requireTool } from './tools.js';

/** A fresh temporary directory removed when the test (or suite) ends. */
export async function tempDir(t: Pick<TestContext, 'after'>, prefix = 'spicedav-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Mount a tmpfs of `size` (e.g. '1m') on the empty folder `dir`: a small disk that fills up. Mounting needs root,
 * which CI has; elsewhere the test is skipped and false returned. Unmount with {@link unmountTmpfs} in a
 * `finally` of the test body: after-hooks run in the order registered, so a tempDir's removal would come first.
 */
export function mountTmpfs(t: Pick<TestContext, 'skip'>, dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return true;
  } catch (err) {
    if (process.env.CI === 'true') throw err;
    t.skip(`cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]}); CI runs this as root`);
    return false;
  }
}

/** Undo {@link mountTmpfs}; lazily, so that a file a failed test left open does not hide that test's error. */
export function unmountTmpfs(dir: string): void {
  execFileSync('umount', ['--lazy', dir]);
}

/**
 * A fresh exFAT file system, which ignores case as macOS, Windows and FAT sticks do and has no hard links,
 * mounted for the test (exfatprogs and exfat-fuse, through a loop device). Returns its mount point and how to
 * unmount it, or null when the test is skipped: the packages are missing or this machine cannot mount (not root),
 * neither of which CI allows (it runs as root and installs both). Unmount in a `finally` of the test body, as for
 * {@link mountTmpfs}.
 */
export async function mountExfat(t: TestContext): Promise<{ dir: string; unmount: () => void } | null> {
  if (!requireTool(t, 'mkfs.exfat', 'exfatprogs') || !requireTool(t, 'mount.exfat-fuse', 'exfat-fuse')) return null;
  const base = await tempDir(t);
  const dir = join(base, 'mnt');
  const image = join(base, 'exfat.img');
  let loop: string | undefined;
  try {
    await mkdir(dir);
    execFileSync('truncate', ['-s', '16M', image]);
    execFileSync('mkfs.exfat', [image], { stdio: 'pipe' });
    loop = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim();
    execFileSync('mount.exfat-fuse', [loop, dir], { stdio: 'pipe' });
  } catch (err) {
    if (loop) execFileSync('losetup', ['--detach', loop]);
    if (process.env.CI === 'true') throw err;
    t.skip(`cannot mount an exFAT image here (${(err as Error).message.split('\n')[0]}); CI runs this as root`);
    return null;
  }
  const device = loop;
  return {
    dir,
    unmount: () => {
      execFileSync('umount', ['--lazy', dir]);
      execFileSync('losetup', ['--detach', device]);
    },
  };
}
