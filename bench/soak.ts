// `npm run bench:soak`: the two-process chain under a long, rough day (USAGE says what), for what only time shows:
// memory or descriptors that creep, and the rare loss a short test does not meet.
import { request, type IncomingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCli, type RunningCli } from '../test/helpers/cli.js';
import { benchArgs } from './args.js';

const USAGE = `usage: npm run bench:soak [-- --minutes N] [--kill-every S] [--size KiB]

Runs \`spicedav guest\` (its port a unix socket) and \`spicedav share --qemu-socket\` on it, and kills the share
with SIGKILL every --kill-every seconds (default 20), restarting it a second later: a viewer that crashes, a
host that goes away mid-transfer. Meanwhile, through the guest's port, until --minutes (default 5) are up:

  atomic   PUT A whole, then a PUT of B cut halfway: the file, on disk and through GET, is always A or B whole
  traffic  PUT, GET (byte-exact), PROPFIND and DELETE of small files
  lock     one file locked once, then written with its token: the lock must survive every restart (never 412)

Requests that fail while the share is down are counted as such; a wrong byte, a mixed file or a lost lock is a
violation, and the exit code is 1. Samples the RSS and open descriptors of both processes every 5 s and prints
their range (the guest lives throughout: its figures should stay flat). --size: the atomic files (default 1024).`;

const args = benchArgs(USAGE, { minutes: 5, 'kill-every': 20, size: 1024 });
const PORT = 19_843 + Math.floor(Math.random() * 500);
const BASE = `http://127.0.0.1:${PORT}`;

interface Tally {
  ok: number;
  /** Failed with no wrong answer: a reset or a 5xx while the share was down. */
  down: number;
  violations: string[];
}
const tally = (): Tally => ({ ok: 0, down: 0, violations: [] });

/** An answer as it arrived. */
interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request through the guest; `null` when the connection failed (the share is being restarted). */
function http(method: string, path: string, o: { body?: Buffer; headers?: Record<string, string>; cutAt?: number } = {}): Promise<Answer | null> {
  return new Promise((resolve) => {
    const req = request(`${BASE}${path}`, { method, headers: { ...o.headers, ...(o.body ? { 'Content-Length': String(o.body.length) } : {}) }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', () => resolve(null));
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => req.destroy());
    if (o.cutAt !== undefined && o.body) {
      // An upload the client gives up on halfway: what the server holds must never replace the file.
      req.write(o.body.subarray(0, o.cutAt), () => setTimeout(() => req.destroy(), 50));
      return;
    }
    req.end(o.body);
  });
}

const failed = (r: { status: number } | null) => r === null || r.status >= 500;

async function atomic(share: string, until: number, t: Tally): Promise<void> {
  const size = args.size * 1024;
  const a = randomBytes(size);
  const b = randomBytes(size);
  const whole = (x: Buffer) => x.equals(a) || x.equals(b);
  while (Date.now() < until) {
    const put = await http('PUT', '/keep.bin', { body: a });
    await http('PUT', '/keep.bin', { body: b, cutAt: size >> 1 });
    const got = await http('GET', '/keep.bin');
    const disk = await readFile(join(share, 'keep.bin')).catch(() => null);
    if (disk && !whole(disk)) t.violations.push(`keep.bin on disk is neither A nor B (${disk.length} bytes)`);
    if (got?.status === 200 && !whole(got.body)) t.violations.push(`GET keep.bin gave neither A nor B (${got.body.length} bytes)`);
    if (failed(put) || failed(got)) t.down++;
    else t.ok++;
  }
}

/** When the share was last killed: a violation says how long after. */
let lastKill = 0;

async function traffic(share: string, until: number, t: Tally): Promise<void> {
  // What each path was sent lately, so a wrong GET can say whose bytes it returned.
  const sent = new Map<string, { i: number; data: Buffer }[]>();
  for (let i = 0; Date.now() < until; i++) {
    const path = `/small-${i % 50}.bin`;
    const data = randomBytes(1 + (i % 7) * 1000);
    const history = [{ i, data }, ...(sent.get(path) ?? [])].slice(0, 4);
    sent.set(path, history);
    const put = await http('PUT', path, { body: data });
    const got = await http('GET', path);
    if (put && put.status < 300 && got?.status === 200 && !got.body.equals(data)) {
      // Read before this round's DELETE: what the file holds says whether the upload or the answer went wrong.
      const disk = await readFile(join(share, path)).catch(() => null);
      const whose = (b: Buffer | null): string => {
        if (b === null) return 'nothing';
        const from = history.find((h) => h.data.equals(b));
        return `${b.length} bytes, ${from ? `round ${from.i}'s` : "no recent round's"}`;
      };
      t.violations.push(
        `GET ${path} is not what its PUT sent (round ${i}, PUT ${put.status}, ${data.length} bytes): it gave ${whose(got.body)}; on disk ${whose(disk)}; ${Date.now() - lastKill} ms after a kill`,
      );
    }
    const list = await http('PROPFIND', '/', { headers: { Depth: '1' } });
    const del = await http('DELETE', path);
    if (list && list.status !== 207 && list.status < 500) t.violations.push(`PROPFIND / answered ${list.status}`);
    if ([put, got, list, del].some(failed)) t.down++;
    else t.ok++;
  }
}

async function lock(until: number, t: Tally): Promise<void> {
  let token: string | undefined;
  while (!token && Date.now() < until) {
    const body = Buffer.from('<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>soak</D:owner></D:lockinfo>');
    const r = await http('LOCK', '/locked.txt', { body, headers: { Timeout: 'Second-3600', 'Content-Type': 'application/xml' } });
    if (r?.status === 200 || r?.status === 201) token = /^<(.+)>$/.exec(String(r.headers['lock-token']))?.[1];
    else await sleep(500);
  }
  for (let i = 0; token && Date.now() < until; i++) {
    const r = await http('PUT', '/locked.txt', { body: Buffer.from(`version ${i}\n`), headers: { If: `(<${token}>)` } });
    if (r?.status === 412) t.violations.push('the lock on /locked.txt was lost: a write with its token got 412');
    if (failed(r)) t.down++;
    else if (r && r.status < 300) t.ok++;
    await sleep(250);
  }
}

/** VmRSS in MiB and open descriptors of a process; null once it is gone. */
function sample(pid: number | undefined): { rss: number; fds: number } | null {
  try {
    // A process killed but not yet reaped (a zombie) has no VmRSS: not a sample.
    const kib = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? null : { rss: Number(kib) / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return null;
  }
}

class Range {
  min = Infinity;
  max = -Infinity;
  last = NaN;
  add(v: number): void {
    this.min = Math.min(this.min, v);
    this.max = Math.max(this.max, v);
    this.last = v;
  }
  toString(): string {
    return Number.isFinite(this.min) ? `${this.min.toFixed(0)}–${this.max.toFixed(0)} (last ${this.last.toFixed(0)})` : 'no sample';
  }
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'spicedav-soak-'));
  const share = join(base, 'share');
  await mkdir(share);
  const socket = join(base, 'port.sock');
  const cleanups: (() => unknown)[] = [];
  const ctx = { after: (f: () => unknown) => void cleanups.push(f) };
  const guest = startCli(ctx, ['guest', '--device', `unix-listen:${socket}`, '--port', String(PORT), '--no-status']);
  await guest.waitFor(/listening on/);
  let host!: RunningCli;
  let attached = 0;
  const startShare = async () => {
    host = startCli(ctx, ['share', share, '--qemu-socket', socket, '--state-dir', join(base, 'state'), '--no-status']);
    // Each start attaches the host anew: the guest says so once per start.
    attached++;
    const deadline = Date.now() + 15_000;
    while ((guest.stdout.match(/host attached/g) ?? []).length < attached && Date.now() < deadline) await sleep(100);
  };
  await startShare();
  const until = Date.now() + args.minutes * 60_000;
  const [atomicT, trafficT, lockT] = [tally(), tally(), tally()];
  const mem = { guestRss: new Range(), guestFds: new Range(), shareRss: new Range(), shareFds: new Range() };
  let kills = 0;
  const killer = (async () => {
    while (Date.now() + args['kill-every'] * 1000 < until) {
      await sleep(args['kill-every'] * 1000);
      await host.stop('SIGKILL');
      lastKill = Date.now();
      kills++;
      await sleep(1000);
      await startShare();
    }
  })();
  const sampler = setInterval(() => {
    const g = sample(guest.child.pid);
    const s = sample(host.child.pid);
    if (g) {
      mem.guestRss.add(g.rss);
      mem.guestFds.add(g.fds);
    }
    if (s) {
      mem.shareRss.add(s.rss);
      mem.shareFds.add(s.fds);
    }
  }, 5000);
  const ticker = process.stderr.isTTY ? setInterval(() => process.stderr.write(`\r${Math.ceil((until - Date.now()) / 1000)} s left, ${kills} kills   `), 1000) : null;
  await Promise.all([atomic(share, until, atomicT), traffic(share, until, trafficT), lock(until, lockT), killer]);
  clearInterval(sampler);
  if (ticker) {
    clearInterval(ticker);
    process.stderr.write('\n');
  }
  const temporaries = (await readdir(share)).filter((n) => n.startsWith('.spicedav-'));
  const guestLinks = await Promise.all(readdirSync(`/proc/${guest.child.pid}/fd`).map((fd) => readlink(`/proc/${guest.child.pid}/fd/${fd}`).catch(() => '?')));
  await host.stop('SIGTERM');
  await guest.stop('SIGTERM');
  for (const f of cleanups) await f();
  await rm(base, { recursive: true, force: true });

  console.log(`soak: ${args.minutes} min, share killed ${kills} times (every ${args['kill-every']} s)`);
  for (const [name, t] of Object.entries({ atomic: atomicT, traffic: trafficT, lock: lockT })) {
    console.log(`  ${name.padEnd(8)} ${String(t.ok).padStart(6)} ok  ${String(t.down).padStart(5)} while the share was down  ${t.violations.length} violations`);
    for (const v of [...new Set(t.violations)].slice(0, 5)) console.log(`           ${v}`);
  }
  console.log(`  guest    RSS ${mem.guestRss} MiB, descriptors ${mem.guestFds}; at the end ${guestLinks.length} (${guestLinks.filter((l) => l.startsWith('socket:')).length} sockets)`);
  console.log(`  share    RSS ${mem.shareRss} MiB, descriptors ${mem.shareFds}`);
  console.log(`  temporaries left in the share: ${temporaries.length} (a killed share leaves its upload's; the next listing after a day removes them)`);
  const violations = atomicT.violations.length + trafficT.violations.length + lockT.violations.length;
  process.exit(violations ? 1 : 0);
}

await main();
