// `npm run bench:dav`: spicedav serve against Apache mod_dav and chezdav with the shared bench scripts (USAGE says
// how and what).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';

const here = dirname(fileURLToPath(import.meta.url));

const USAGE = `usage: npm run bench:dav [-- --dir DIR] [--servers spicedav,apache,chezdav] [--skip STEPS] [--passes N]
                          [--node-flags=--single-threaded]

Measures \`spicedav serve\` with the shared bench scripts (../shared/bench: litmus, 1 GiB GET/PUT with peak
RSS, 2,000 x 4 KiB PUT/GET, PROPFIND Depth 1 on 10,000 entries, 8 x 64 MiB GET) and, in the same run, Apache
mod_dav_fs and chezdav (phodav) when they are installed, one server at a time, each on its own copy of the
data (hard links, so the 1.5 GiB is on disk once). Prints every figure, the ratios against Apache and chezdav
and the issue's targets. Figures, not pass/fail: the machine is shared, so read ratios of one run, and repeat
with --passes when they are close.

spicedav is measured as users run it: \`spicedav serve\` (the built CLI) in a process of its own, so its RSS is
the server's alone, as it is for the peers. --node-flags=FLAGS starts that process with extra node/V8 flags (the = is needed: they start with a dash), to
measure a setting that only node's command line can give (docs/performance.md). Environment: BENCH_DIR (the
shared scripts; default ../shared/bench next to the checkout), QUIET_MAX/QUIET_PCT (passed to run-all.sh:
how long to wait for a quiet CPU before each step; default 30 s / 25 %).`;

const args = benchArgs(USAGE, { dir: '/tmp/spicedav-bench', servers: 'spicedav,apache,chezdav', skip: '', passes: 1, 'node-flags': '' });
const NODE_FLAGS = args['node-flags'].split(' ').filter(Boolean);

/** The checkout root: walk up from this file to spicedav's package.json (works from dist/ and .build/<x>/). */
function repoRoot(): string {
  let dir = here;
  while (!existsSync(join(dir, 'package.json')) || !readFileSync(join(dir, 'package.json'), 'utf8').includes('"name": "spicedav"')) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function waitUp(port: number, proc: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`);
    try {
      execFileSync('curl', ['-s', '-o', '/dev/null', '--max-time', '1', '-X', 'OPTIONS', `http://127.0.0.1:${port}/`]);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing answers on port ${port}`);
}

interface Running {
  proc: ChildProcess;
  port: number;
  /** PIDs whose RSS counts (undefined: the bench scripts find them from the port). */
  pids?: string;
  stop(): Promise<void>;
}

function stopper(proc: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((res) => {
      if (proc.exitCode !== null) return res();
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      proc.once('exit', () => {
        clearTimeout(t);
        res();
      });
      proc.kill('SIGTERM');
    });
}

const SERVERS: Record<string, { available: () => boolean; start: (dir: string, work: string) => Promise<Running> }> = {
  spicedav: {
    available: () => true,
    async start(dir) {
      const port = await freePort();
      const cli = join(here, '..', 'src', 'cli', 'index.js');
      const args = [cli, '--no-status', 'serve', dir, '--port', String(port), '--state-dir', join(dir, '..', `state-${port}`)];
      const proc = spawn(process.execPath, [...NODE_FLAGS, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
      await waitUp(port, proc);
      return { proc, port, pids: String(proc.pid), stop: stopper(proc) };
    },
  },
  apache: {
    available: () => have('apache2') && existsSync('/usr/lib/apache2/modules/mod_dav_fs.so'),
    async start(dir, work) {
      const port = await freePort();
      const run = join(work, 'apache-run');
      mkdirSync(join(run, 'run'), { recursive: true });
      mkdirSync(join(run, 'lock'), { recursive: true });
      execFileSync('chown', ['-R', 'www-data:www-data', join(run, 'lock'), dir]);
      const conf = readFileSync(join(benchDir, 'peers', 'apache-httpd.conf.in'), 'utf8')
        .replaceAll('@PORT@', String(port))
        .replaceAll('@DIR@', dir)
        .replaceAll('@RUN@', run);
      writeFileSync(join(run, 'httpd.conf'), conf);
      const proc = spawn('apache2', ['-f', join(run, 'httpd.conf'), '-DFOREGROUND'], { stdio: ['ignore', 'inherit', 'inherit'] });
      await waitUp(port, proc);
      return { proc, port, stop: stopper(proc) };
    },
  },
  chezdav: {
    available: () => have('chezdav'),
    async start(dir) {
      const port = await freePort();
      const proc = spawn('chezdav', ['--local', '--no-mdns', '-p', String(port), '-P', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
      await waitUp(port, proc);
      return { proc, port, pids: String(proc.pid), stop: stopper(proc) };
    },
  },
};

type Results = Record<string, Record<string, number>>;

/** Run the shared run-all.sh against one server; parse `NAME metric value unit # detail` lines. */
function runAll(name: string, r: Running, dir: string, out: string): Promise<Record<string, number>> {
  return new Promise((res, rej) => {
    const env = {
      ...process.env,
      SKIP: ['ceiling', ...args.skip.split(',').filter(Boolean)].join(' '),
      QUIET_MAX: process.env.QUIET_MAX ?? '30',
      QUIET_PCT: process.env.QUIET_PCT ?? '25',
      OUT_DIR: out,
      ...(r.pids ? { SERVER_PID: r.pids } : {}),
    };
    const child = spawn(join(benchDir, 'run-all.sh'), [`http://127.0.0.1:${r.port}/`, dir, name], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const metrics: Record<string, number> = {};
    let text = '';
    child.stdout.on('data', (d: Buffer) => {
      process.stdout.write(d);
      text += d.toString();
    });
    child.on('error', rej);
    child.on('close', () => {
      for (const line of text.split('\n')) {
        const m = /^\S+\s+(\S+)\s+(\S+)/.exec(line);
        if (!m) continue;
        const value = m[2] === undefined ? NaN : m[2].includes('/') ? Number(m[2].split('/')[0]) : Number(m[2]);
        if (!Number.isNaN(value)) metrics[m[1] as string] = value;
      }
      writeFileSync(join(out, `results-${name}.txt`), text);
      res(metrics);
    });
  });
}

/** The targets: ratio against Apache (or an absolute bound). */
const TARGETS: { metric: string; label: string; higherIsBetter: boolean; ratio?: number; absolute?: number }[] = [
  { metric: 'get_1g', label: 'GET 1 GiB MB/s', higherIsBetter: true, ratio: 1.0 },
  { metric: 'put_1g', label: 'PUT 1 GiB MB/s', higherIsBetter: true, ratio: 1.2 },
  { metric: 'small_put_4k', label: 'small PUT ops/s', higherIsBetter: true, ratio: 1.5 },
  { metric: 'small_get_4k', label: 'small GET ops/s', higherIsBetter: true, ratio: 1.0 },
  { metric: 'propfind10k_allprop', label: 'PROPFIND 10k allprop ms', higherIsBetter: false, ratio: 0.5 },
  { metric: 'propfind10k_named', label: 'PROPFIND 10k 7 props ms', higherIsBetter: false, ratio: 0.5 },
  { metric: 'get_8x64m', label: '8 x 64 MiB GET MB/s', higherIsBetter: true, ratio: 1.0 },
  { metric: 'put_1g_peak_rss', label: 'peak RSS in 1 GiB PUT MiB', higherIsBetter: false, absolute: 64 },
  { metric: 'litmus.total', label: 'litmus passed (of 104)', higherIsBetter: true, absolute: 104 },
];

function report(results: Results): void {
  const names = Object.keys(results);
  const fmt = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
  const pad = (s: string, n: number) => s.padStart(n);
  const head = ['metric'.padEnd(28), ...names.map((n) => pad(n, 10)), pad('vs apache', 10), pad('vs chezdav', 11), pad('target', 9), ' verdict'];
  console.log('\n' + head.join(' '));
  for (const t of TARGETS) {
    const ours = results.spicedav?.[t.metric];
    const ratio = (peer: string) => {
      const p = results[peer]?.[t.metric];
      return ours === undefined || p === undefined || p === 0 ? undefined : ours / p;
    };
    const ra = ratio('apache');
    const rc = ratio('chezdav');
    let target = '';
    let ok: boolean | undefined;
    if (t.ratio !== undefined) {
      target = `${t.higherIsBetter ? '>=' : '<='} ${t.ratio}x`;
      if (ra !== undefined) ok = t.higherIsBetter ? ra >= t.ratio : ra <= t.ratio;
    } else if (t.absolute !== undefined && ours !== undefined) {
      target = `${t.higherIsBetter ? '>=' : '<='} ${t.absolute}`;
      ok = t.higherIsBetter ? ours >= t.absolute : ours <= t.absolute;
    }
    const row = [t.label.padEnd(28), ...names.map((n) => pad(fmt(results[n]?.[t.metric]), 10)), pad(ra === undefined ? '-' : `${ra.toFixed(2)}x`, 10), pad(rc === undefined ? '-' : `${rc.toFixed(2)}x`, 11), pad(target, 9), ok === undefined ? ' n/a' : ok ? ' met' : ' MISSED'];
    console.log(row.join(' '));
  }
}

let benchDir = '';

async function main(): Promise<void> {
  benchDir = process.env.BENCH_DIR ?? join(repoRoot(), '..', 'shared', 'bench');
  if (!existsSync(join(benchDir, 'run-all.sh'))) throw new Error(`no bench scripts in ${benchDir}; set BENCH_DIR`);
  const work = resolve(args.dir);
  const wanted = args.servers.split(',');
  const passes = args.passes;
  const data = join(work, 'data');
  mkdirSync(data, { recursive: true });
  execFileSync(join(benchDir, 'prepare.sh'), [data], { stdio: 'inherit' });
  const out = join(work, `out-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(out, { recursive: true });
  const all: Record<string, Record<string, number[]>> = {};
  for (let pass = 1; pass <= passes; pass++) {
    for (const name of wanted) {
      const server = SERVERS[name];
      if (!server?.available()) {
        console.log(`# ${name}: not installed, skipped`);
        continue;
      }
      // Each server gets its own tree of hard links to the data: same bytes, no copy, separate namespaces.
      const dir = join(work, name);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir);
      execFileSync('cp', ['-al', join(data, 'bench-data'), join(dir, 'bench-data')]);
      console.log(`# pass ${pass}: ${name}`);
      const running = await server.start(dir, work);
      try {
        const m = await runAll(`${name}-p${pass}`, running, dir, out);
        for (const [k, v] of Object.entries(m)) ((all[name] ??= {})[k] ??= []).push(v);
      } finally {
        await running.stop();
      }
    }
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)] as number;
  const results: Results = {};
  for (const [name, metrics] of Object.entries(all)) results[name] = Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, median(v)]));
  report(results);
  console.log(`\nraw lines: ${out}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
