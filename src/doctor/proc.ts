import { readdir, readlink, readFile } from 'node:fs/promises';

/** A process, as `spicedav doctor` names it to the user. */
export interface ProcessInfo {
  pid: number;
  command: string;
}

/**
 * Scans /proc/<pid>/fd for open files whose link target passes `match` (a path, or `socket:[inode]`), and
 * returns each match with its process. Processes we may not inspect (other users, without root) are skipped,
 * so the answer can be partial, never wrong.
 */
export async function scanOpenFiles(match: (target: string) => boolean): Promise<Array<ProcessInfo & { target: string }>> {
  const out: Array<ProcessInfo & { target: string }> = [];
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    let command: string | undefined;
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (!target || !match(target)) continue;
      command ??= (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean).join(' ') || `pid ${pid}`;
      out.push({ pid: Number(pid), command, target });
    }
  }
  return out;
}

/** The processes that have `path` open. */
export async function fileHolders(path: string): Promise<ProcessInfo[]> {
  const found = await scanOpenFiles((t) => t === path);
  return [...new Map(found.map((f) => [f.pid, { pid: f.pid, command: f.command }])).values()];
}
