// `npm run bench:vm`: the benchmark that matters (issue 6), spicedav against the reference chain through a real
// QEMU guest (USAGE says how and what).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureGuestImage } from '../test/helpers/vm/image.js';
import { Vm } from '../test/helpers/vm/vm.js';
import {
  GUEST_URL, spicedavChainMissing, startShare, startSpicedavGuest, startSpicy, startSpiceWebdavd, stopSpicedavGuest,
  stopSpiceWebdavd,
} from '../test/helpers/vm/peers.js';
import {
  CURL_FIGURES, guestRandomFile, parseCurlFigures, sha256File, waitForChain, writeRandomFile,
} from '../test/helpers/vm/dav-checks.js';
import { haveTool } from '../test/helpers/tools.js';
import type { ProcessGroup } from '../test/helpers/vm/process-group.js';
import { benchArgs } from './args.js';

const USAGE = `usage: npm run bench:vm [-- --smp N] [--size MiB] [--small N] [--rounds N] [--profile DIR]

One QEMU guest (TCG, the same image and vCPU count for both chains) runs, side by side, (a) the reference chain spice-webdavd ↔ spicy/phodav and (b) spicedav guest ↔ spicedav
share: a 256 MiB random file GET and PUT with curl in the guest, then 2,000 small files PUT and GET on one
keep-alive connection. Prints MB/s, ops/s and spicedav's ratio to the reference; target ≥ 1.5× on GET and
PUT. Figures, not pass/fail: under emulation the guest's per-byte cost dominates, so compare only numbers
from the same run.

Options: --smp N (vCPUs, default 1), --size MiB (default 256), --small N (default 2000), --rounds N (each
chain N times, alternating, the median kept; default 1), --profile DIR (run both spicedav ends under
node --cpu-prof and copy the .cpuprofile files, the guest's included, to DIR: open them in Chrome DevTools).`;

const args = benchArgs(USAGE, { smp: 1, size: 256, small: 2000, rounds: 1, profile: '' });
const SMP = args.smp;
const SIZE = args.size << 20;
const SMALL = args.small;
const ROUNDS = args.rounds;
const PROFILE_DIR = args.profile ? resolve(args.profile) : undefined;
/** Where the guest's node writes its profile (tmpfs), copied out by the agent. */
const GUEST_PROFILE_DIR = '/tmp/prof';

/** One chain's figures. */
interface Figures {
  getMBps: number;
  putMBps: number;
  smallPutOps: number;
  smallGetOps: number;
}

/** A chain to measure: how to bring up its two ends on the booted VM, sharing `dir`, and take them down. */
interface Chain {
  name: string;
  up(vm: Vm, dir: string): Promise<ProcessGroup>;
  down(vm: Vm, host: ProcessGroup): Promise<void>;
}

const reference: Chain = {
  name: 'spice-webdavd ↔ spicy/phodav',
  async up(vm, dir) {
    await startSpiceWebdavd(vm);
    return startSpicy(vm.spicePort as number, dir);
  },
  async down(vm, host) {
    await host.stop();
    await stopSpiceWebdavd(vm);
  },
};

const spicedav: Chain = {
  name: 'spicedav guest ↔ spicedav share',
  async up(vm, dir) {
    await startSpicedavGuest(vm, PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${GUEST_PROFILE_DIR}`] : []);
    return startShare(dir, { spicePort: vm.spicePort as number }, {
      stateDir: `${dir}.state`, nodeArgs: PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [],
    });
  },
  async down(vm, host) {
    // node writes a profile when it exits normally: both ends are stopped with SIGTERM, which they handle.
    await host.stop(10_000);
    await stopSpicedavGuest(vm);
    if (PROFILE_DIR) await copyGuestProfiles(vm, PROFILE_DIR);
  },
};

/** Copies the guest's .cpuprofile files to `dir` on the host (JSON text, through the agent). */
async function copyGuestProfiles(vm: Vm, dir: string): Promise<void> {
  const names = (await vm.run(`ls ${GUEST_PROFILE_DIR} 2>/dev/null || true`)).split('\n').filter((n) => n.endsWith('.cpuprofile'));
  if (!names.length) console.log('  (the guest wrote no profile: did `spicedav guest` exit normally on SIGTERM?)');
  for (const name of names) {
    await writeFile(join(dir, `guest-${name}`), await vm.run(`cat ${GUEST_PROFILE_DIR}/${name}; rm ${GUEST_PROFILE_DIR}/${name}`, { timeoutMs: 120_000 }));
    console.log(`  guest profile: ${join(dir, `guest-${name}`)}`);
  }
}

/** Seconds since the guest booted, for timing a guest command from the inside (10 ms resolution). */
const UPTIME = "cut -d' ' -f1 /proc/uptime";

async function measure(vm: Vm, chain: Chain, hostDir: string, upSha: string): Promise<Figures> {
  const host = await chain.up(vm, hostDir);
  try {
    await waitForChain(vm);
    const timeoutMs = 60_000 + (SIZE / 1e6) * 1000; // 1 MB/s would be a broken chain, not a slow one
    // GET into /dev/null: the guest's CPU is the bottleneck, so no sha256 or tmpfs write in the timed path
    // (the e2e tests verify content); PUT without Expect: 100-continue, which phodav mishandles.
    const get = parseCurlFigures(await vm.run(`curl -sS -o /dev/null -w ${CURL_FIGURES} ${GUEST_URL}/big.bin`, { timeoutMs }));
    if (get.status !== 200 || get.bytes !== SIZE) throw new Error(`GET big.bin: status ${get.status}, ${get.bytes} bytes`);
    const put = parseCurlFigures(await vm.run(`curl -sS -o /dev/null -H 'Expect:' -T /tmp/up.bin -w ${CURL_FIGURES} ${GUEST_URL}/up.bin`, { timeoutMs }));
    if (put.status !== 201 && put.status !== 204) throw new Error(`PUT up.bin: status ${put.status}`);
    if ((await sha256File(join(hostDir, 'up.bin'))) !== upSha) throw new Error('PUT up.bin: the host file differs from the guest file');

    // Small files: one curl, URL globbing, one keep-alive connection; the wall time includes curl's start.
    const smallPut = await vm.run(`curl -sS -o /dev/null -X MKCOL ${GUEST_URL}/small/
t0=$(${UPTIME}); curl -sS -H 'Expect:' -T '/tmp/small/f[1-${SMALL}]' -o /dev/null -w '%{http_code}\\n' ${GUEST_URL}/small/ >/tmp/codes; t1=$(${UPTIME})
echo "$t0 $t1 $(grep -c '^20[14]$' /tmp/codes)"`, { timeoutMs: 600_000 });
    const smallGet = await vm.run(`t0=$(${UPTIME}); curl -sS -o /dev/null -w '%{http_code}\\n' '${GUEST_URL}/small/f[1-${SMALL}]' >/tmp/codes; t1=$(${UPTIME})
echo "$t0 $t1 $(grep -c '^200$' /tmp/codes)"`, { timeoutMs: 600_000 });
    const opsPerSecond = (out: string, what: string): number => {
      const [t0, t1, ok] = out.trim().split('\n').at(-1)?.split(' ').map(Number) ?? [];
      if (ok !== SMALL) throw new Error(`${what}: ${ok} of ${SMALL} succeeded`);
      return SMALL / ((t1 ?? 0) - (t0 ?? 0));
    };
    return {
      getMBps: get.MBps, putMBps: put.MBps,
      smallPutOps: opsPerSecond(smallPut, 'small PUT'), smallGetOps: opsPerSecond(smallGet, 'small GET'),
    };
  } catch (err) {
    throw new Error(`${chain.name}: ${(err as Error).message}\n--- host ---\n${host.output().slice(-2000)}`);
  } finally {
    await chain.down(vm, host);
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function summarise(rounds: Figures[]): Figures {
  return {
    getMBps: median(rounds.map((f) => f.getMBps)), putMBps: median(rounds.map((f) => f.putMBps)),
    smallPutOps: median(rounds.map((f) => f.smallPutOps)), smallGetOps: median(rounds.map((f) => f.smallGetOps)),
  };
}

async function main(): Promise<number> {
  const tools = ['qemu-system-x86_64', 'spicy', 'xvfb-run', 'spice-webdavd', 'avahi-daemon', 'dbus-daemon', 'curl', 'busybox'];
  const missing = tools.filter((t) => !haveTool(t));
  if (missing.length) {
    console.error(`bench:vm needs ${missing.join(', ')} (see .ci/run for the packages)`);
    return 1;
  }
  const skipSpicedav = spicedavChainMissing();
  const chains = skipSpicedav ? [reference] : [reference, spicedav];

  if (PROFILE_DIR) await mkdir(PROFILE_DIR, { recursive: true });
  const image = await ensureGuestImage();
  const work = await mkdtemp(join(tmpdir(), 'spicedav-bench-vm-'));
  const vm = await Vm.boot({ image, webdav: 'spice', smp: SMP, watchdogSeconds: 7200 });
  try {
    console.log(`guest: TCG, ${SMP} vCPU, kernel ${image.kernel.version}, image ${(image.size / 1e6).toFixed(0)} MB, boot ${(vm.bootMs / 1000).toFixed(1)} s`);
    console.log(`workload: ${SIZE >> 20} MiB random file GET and PUT (curl in the guest), ${SMALL} small files PUT and GET (4 KiB, one connection)`);
    const upSha = await guestRandomFile(vm, '/tmp/up.bin', SIZE);
    await vm.run(`node -e "const fs=require('fs'),c=require('crypto');fs.mkdirSync('/tmp/small');for(let i=1;i<=${SMALL};i++)fs.writeFileSync('/tmp/small/f'+i,c.randomBytes(4096))"`, { timeoutMs: 120_000 });
    const results = new Map<Chain, Figures[]>(chains.map((c) => [c, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const chain of chains) {
        const dir = join(work, `${chain === reference ? 'reference' : 'spicedav'}-${round}`);
        await mkdir(dir);
        await writeRandomFile(join(dir, 'big.bin'), SIZE);
        const f = await measure(vm, chain, dir, upSha);
        results.get(chain)?.push(f);
        console.log(`  round ${round + 1} ${chain.name}: GET ${f.getMBps.toFixed(1)} MB/s, PUT ${f.putMBps.toFixed(1)} MB/s, small PUT ${f.smallPutOps.toFixed(0)}/s, small GET ${f.smallGetOps.toFixed(0)}/s`);
        await rm(dir, { recursive: true, force: true });
        await rm(`${dir}.state`, { recursive: true, force: true });
      }
    }
    const ref = summarise(results.get(reference) ?? []);
    const ours = skipSpicedav ? null : summarise(results.get(spicedav) ?? []);
    const row = (label: string, key: keyof Figures, unit: string, target?: number): string => {
      const r = ref[key];
      const o = ours?.[key];
      const ratio = o === undefined ? '' : `${(o / r).toFixed(2)}×${target ? (o / r >= target ? '  (target ≥ 1.5× met)' : '  (target ≥ 1.5× NOT met)') : ''}`;
      return `${label.padEnd(22)}${`${r.toFixed(1)} ${unit}`.padStart(14)}${(o === undefined ? '–' : `${o.toFixed(1)} ${unit}`).padStart(16)}   ${ratio}`;
    };
    console.log(`\n${''.padEnd(22)}${'reference'.padStart(14)}${'spicedav'.padStart(16)}   ratio`);
    console.log(row(`GET ${SIZE >> 20} MiB`, 'getMBps', 'MB/s', 1.5));
    console.log(row(`PUT ${SIZE >> 20} MiB`, 'putMBps', 'MB/s', 1.5));
    console.log(row(`PUT ${SMALL} small files`, 'smallPutOps', 'op/s'));
    console.log(row(`GET ${SMALL} small files`, 'smallGetOps', 'op/s'));
    if (skipSpicedav) console.log(`\nspicedav chain skipped: ${skipSpicedav}`);
    if (PROFILE_DIR && !skipSpicedav) console.log(`\nprofiles (host and guest): ${PROFILE_DIR}`);
    return 0;
  } finally {
    await vm.close();
    await rm(work, { recursive: true, force: true });
  }
}

main().then((code) => {
  process.exitCode = code;
}, (err: unknown) => {
  console.error(`bench:vm failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
