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

const USAGE = `usage: npm run bench:soak [-- --minutes N] [--kill-every S] [--size KiB] [--only W,W]

Runs \`spicedav guest\` (its port a unix socket) and \`spicedav share --qemu-socket\` on it, and kills the share
with SIGKILL every --kill-every seconds (default 20), restarting it a second later: a viewer that crashes, a
host that goes away mid-transfer. Meanwhile, through the guest's port, until --minutes (default 5) are up:

  atomic   PUT A whole, then a PUT of B cut halfway: the file, on disk and through GET, is always A or B whole
  traffic  PUT, GET (byte-exact), PROPFIND and DELETE of small files
  lock     one file locked once, then written with its token: the lock must survive every restart (never 412)

Requests that fail while the share is down are counted as such, and why they failed is printed (with no kill,
--kill-every 1000, nothing should fail). A wrong byte, a mixed file, a lost lock or an answer whose status does
not fit its request (answers crossing connections) is a violation, and the exit code is 1. Samples the RSS and
open descriptors of both processes every 5 s and prints their range (the guest lives throughout: its figures
should stay flat). --size: the atomic files (default 1024). --only: run just these workloads (default all three),
to find which one a fault needs.`;

const args = benchArgs(USAGE, { minutes: 5, 'kill-every': 20, size: 1024, only: 'atomic,traffic,lock' });
const WORKLOADS = ['atomic', 'traffic', 'lock'];
const only = new Set(args.only.split(','));
for (const w of only) {
  if (!WORKLOADS.includes(w)) {
    console.error(`--only takes workloads among ${WORKLOADS.join(', ')}, not '${w}'\n\n${USAGE}`);
    process.exit(2);
  }
}
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
  /** The client socket's local port: which connection carried it, to tell connections apart in a report. */
  port: number | undefined;
}

/** Why requests failed, counted by method and cause: with no kill, any is a fault to chase. */
const downCauses = new Map<string, number>();
const countDown = (cause: string): void => void downCauses.set(cause, (downCauses.get(cause) ?? 0) + 1);

/** One request through the guest; `null` when the connection failed (the share is being restarted). */
function http(method: string, path: string, o: { body?: Buffer; headers?: Record<string, string>; cutAt?: number } = {}): Promise<Answer | null> {
  return new Promise((resolve) => {
    const req = request(`${BASE}${path}`, { method, headers: { ...o.headers, ...(o.body ? { 'Content-Length': String(o.body.length) } : {}) }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 500) countDown(`${method} ${res.statusCode}`);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), port: req.socket?.localPort });
      });
      res.on('error', (err: NodeJS.ErrnoException) => {
        countDown(`${method} response ${err.code ?? err.message}`);
        resolve(null);
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // The cut upload's own destroy() is not a failure.
      if (o.cutAt === undefined) countDown(`${method} ${err.code ?? err.message}`);
      resolve(null);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'TIMEOUT' })));
    if (o.cutAt !== undefined && o.body) {
      // An upload the client gives up on halfway: what the server holds must never replace the file.
      req.write(o.body.subarray(0, o.cutAt), () => setTimeout(() => req.destroy(), 50));
      return;
    }
    req.end(o.body);
  });
}

/** When the share was last killed: a violation says how long after. */
let lastKill = 0;

const failed = (r: { status: number } | null) => r === null || r.status >= 500;

/**
 * An answer whose status does not fit its request is a violation: another request's answer (a 200 of 1 MiB to
 * a DELETE) means answers crossed or shifted on a connection, which byte checks alone miss for bodiless requests.
 */
function expect(t: Tally, what: string, r: Answer | null, ...statuses: number[]): void {
  if (r === null || r.status >= 500 || statuses.includes(r.status)) return;
  t.violations.push(`${what} answered ${r.status} (${r.body.length} bytes, ETag ${r.headers.etag ?? 'none'}, local port ${r.port}); ${Date.now() - lastKill} ms after a kill`);
}

async function atomic(share: string, until: number, t: Tally): Promise<void> {
  const size = args.size * 1024;
  const a = randomBytes(size);
  const b = randomBytes(size);
  const whole = (x: Buffer) => x.equals(a) || x.equals(b);
  while (Date.now() < until) {
    const put = await http('PUT', '/keep.bin', { body: a });
    await http('PUT', '/keep.bin', { body: b, cutAt: size >> 1 });
    const got = await http('GET', '/keep.bin');
    expect(t, 'PUT keep.bin', put, 201, 204);
    // 404 only when no PUT got through: the share was down from the start.
    expect(t, 'GET keep.bin', got, ...(failed(put) ? [200, 404] : [200]));
    const disk = await readFile(join(share, 'keep.bin')).catch(() => null);
    if (disk && !whole(disk)) t.violations.push(`keep.bin on disk is neither A nor B (${disk.length} bytes)`);
    if (got?.status === 200 && !whole(got.body)) t.violations.push(`GET keep.bin gave neither A nor B (${got.body.length} bytes)`);
    if (failed(put) || failed(got)) t.down++;
    else t.ok++;
  }
}

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
    expect(t, `PUT ${path}`, put, 201, 204);
    // A PUT cut by a kill may not have stored the file: then 404 is the right answer to GET and DELETE.
    const gone = failed(put) ? [404] : [];
    expect(t, `GET ${path}`, got, 200, ...gone);
    if (put && put.status < 300 && got?.status === 200 && !got.body.equals(data)) {
      // Read before this round's DELETE: what the file holds says whether the upload or the answer went wrong.
      const disk = await readFile(join(share, path)).catch(() => null);
      const whose = (b: Buffer | null): string => {
        if (b === null) return 'nothing';
        const from = history.find((h) => h.data.equals(b));
        return `${b.length} bytes, ${from ? `round ${from.i}'s` : "no recent round's"}`;
      };
      t.violations.push(
        `GET ${path} is not what its PUT sent (round ${i}, PUT ${put.status}, ${data.length} bytes): it gave ${whose(got.body)} ` +
          `on local port ${got.port}; on disk ${whose(disk)}; ${Date.now() - lastKill} ms after a kill`,
      );
    }
    const list = await http('PROPFIND', '/', { headers: { Depth: '1' } });
    const del = await http('DELETE', path);
    expect(t, 'PROPFIND /', list, 207);
    expect(t, `DELETE ${path}`, del, 204, ...gone);
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
    else expect(t, 'PUT /locked.txt', r, 201, 204);
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
  await Promise.all([
    only.has('atomic') && atomic(share, until, atomicT),
    only.has('traffic') && traffic(share, until, trafficT),
    only.has('lock') && lock(until, lockT),
    killer,
  ]);
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
    if (!only.has(name)) continue;
    console.log(`  ${name.padEnd(8)} ${String(t.ok).padStart(6)} ok  ${String(t.down).padStart(5)} while the share was down  ${t.violations.length} violations`);
    for (const v of [...new Set(t.violations)].slice(0, 5)) console.log(`           ${v}`);
  }
  if (downCauses.size) console.log(`  failures ${[...downCauses].map(([c, n]) => `${c} ×${n}`).join(', ')}`);
  console.log(`  guest    RSS ${mem.guestRss} MiB, descriptors ${mem.guestFds}; at the end ${guestLinks.length} (${guestLinks.filter((l) => l.startsWith('socket:')).length} sockets)`);
  console.log(`  share    RSS ${mem.shareRss} MiB, descriptors ${mem.shareFds}`);
  console.log(`  temporaries left in the share: ${temporaries.length} (a killed share leaves its upload's; the next listing after a day removes them)`);
  const violations = atomicT.violations.length + trafficT.violations.length + lockT.violations.length;
  process.exit(violations ? 1 : 0);
}

await main();
