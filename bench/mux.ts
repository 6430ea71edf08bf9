// `npm run bench:mux`: the multiplexer against a plain pipe, in memory and over a unix socket (USAGE says how and
// what).
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { PassThrough, Readable, Writable, type Duplex } from 'node:stream';
import { MuxSession, type MuxChannel } from '../mux/index.js';
import { duplexPair } from '../test/helpers/duplex-pair.js';
import { benchArgs } from './args.js';

const USAGE = `usage: npm run bench:mux [-- --mib N] [--chunk BYTES]

Pushes 1 GiB (or N MiB) of 64 KiB chunks through a guest-role MuxSession and a host-role MuxSession joined
by an in-memory duplex pair, with 1 and with 8 concurrent clients, in both directions; and, in the same run,
the same chunks through a plain stream.pipeline over the same kind of duplex pair without the mux. Then the
same over a unix-domain socket, where the transport does real work (the kernel copies every byte) as the
SPICE socket does. Prints MB/s (10^6 bytes/s) by wall clock and by CPU time (robust when other processes share
the cores), best of 3 runs each, the mux/plain ratios and the peak RSS. Figures, not pass/fail: targets are
>= 0.8x the plain pipe and >= 1 GB/s.

Reading the in-memory figures: duplexPair hands buffer references from writer to reader, so the plain pipe
costs a few microseconds per 64 KiB chunk, and any extra stream hop is a large fraction of that. The
"+ 2 PassThrough hops" row is the plain pipe with the two stream hops the mux path adds by design (each
connection is its own Duplex, on both sides); it is the floor for that design.`;

const args = benchArgs(USAGE, { mib: 1024, chunk: 64 * 1024 });
const CHUNK = args.chunk;
let TOTAL = args.mib * 1024 * 1024;
const RUNS = 3;

const chunk = Buffer.alloc(CHUNK, 0x61);

/** `bytes` in CHUNK-sized chunks (the same buffer each time: the bench measures the plumbing, not memcpy). */
function source(bytes: number): Readable {
  let left = bytes;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      const n = Math.min(CHUNK, left);
      left -= n;
      this.push(n > 0 ? (n === CHUNK ? chunk : chunk.subarray(0, n)) : null);
    },
  });
}

/** A sink that counts the bytes written to it. */
function sink(): { stream: Writable; bytes: () => number } {
  let bytes = 0;
  const stream = new Writable({
    highWaterMark: CHUNK,
    write(c: Buffer, _enc, cb) {
      bytes += c.length;
      cb();
    },
  });
  return { stream, bytes: () => bytes };
}

interface Result {
  seconds: number;
  cpuSeconds: number;
  bytes: number;
}

/** Best of `RUNS` runs (by wall clock and, separately, by CPU time): the least disturbed by other processes. */
async function timed(run: () => Promise<number>): Promise<Result> {
  let best: Result | undefined;
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    const bytes = await run();
    const used = process.cpuUsage(cpu);
    const r = { seconds: Number(process.hrtime.bigint() - start) / 1e9, cpuSeconds: (used.user + used.system) / 1e6, bytes };
    best = best === undefined ? r : { bytes, seconds: Math.min(best.seconds, r.seconds), cpuSeconds: Math.min(best.cpuSeconds, r.cpuSeconds) };
  }
  return best as Result;
}

type Transport = 'memory' | 'unix';
let sockets = 0;

/** Two connected ends of `kind`: an in-memory pair, or both ends of a unix-domain socket connection. */
async function connectPair(kind: Transport): Promise<[Duplex, Duplex]> {
  if (kind === 'memory') return duplexPair();
  const path = join(tmpdir(), `spicedav-bench-${process.pid}-${++sockets}.sock`);
  rmSync(path, { force: true });
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect(path);
  const [[serverSide]] = await Promise.all([accepted, once(client, 'connect')]);
  server.close();
  rmSync(path, { force: true });
  return [serverSide, client];
}

/** Plain: `clients` pipelines source → transport → sink, no mux. */
function plain(kind: Transport, clients: number): Promise<number> {
  const per = TOTAL / clients;
  return Promise.all(
    Array.from({ length: clients }, async () => {
      const [a, b] = await connectPair(kind);
      const s = sink();
      await Promise.all([pipeline(source(per), a), pipeline(b, s.stream)]);
      return s.bytes();
    }),
  ).then((n) => n.reduce((x, y) => x + y, 0));
}

/**
 * The plain pipeline with the mux path's stream hops but none of its logic: a PassThrough stands in for the
 * guest channel and another for the host channel. What this costs is the floor for any design that gives
 * each connection its own Duplex.
 */
function hops(clients: number): Promise<number> {
  const per = TOTAL / clients;
  return Promise.all(
    Array.from({ length: clients }, async () => {
      const [a, b] = duplexPair();
      const s = sink();
      await Promise.all([pipeline(source(per), new PassThrough(), a), pipeline(b, new PassThrough(), s.stream)]);
      return s.bytes();
    }),
  ).then((n) => n.reduce((x, y) => x + y, 0));
}

/**
 * Mux: `clients` connections through guest session → transport → host session. Upload: guest channels write,
 * host channels read to their end. Download: each guest channel sends one byte to open the connection, the host
 * channels write, the guest channels read until the host's size-0 ('hostclose').
 */
async function mux(kind: Transport, clients: number, direction: 'upload' | 'download'): Promise<number> {
  const per = TOTAL / clients;
  const [hostSide, guestSide] = await connectPair(kind);
  const host = new MuxSession(hostSide, { role: 'host' });
  const guest = new MuxSession(guestSide, { role: 'guest' });
  // Readers are attached inside the 'channel' listener: an in-memory chain runs on process.nextTick, which
  // starves promise callbacks, so a reader attached after an await would find its channel overflowed.
  const hostReads: Array<Promise<number>> = [];
  const hostWrites: Array<Promise<void>> = [];
  // Channels left half-open at the end are destroyed with the session; their errors are expected here.
  const ignore = (): void => {};
  host.on('channel', (ch: MuxChannel) => {
    ch.on('error', ignore);
    if (direction === 'upload') {
      const s = sink();
      hostReads.push(pipeline(ch, s.stream).then(() => s.bytes()));
    } else {
      hostWrites.push(pipeline(source(per), ch));
    }
  });
  const guestChannels = Array.from({ length: clients }, () => guest.open().on('error', ignore));
  let moved: number[];
  if (direction === 'upload') {
    await Promise.all(guestChannels.map((ch) => pipeline(source(per), ch)));
    moved = await Promise.all(hostReads);
  } else {
    const reading = guestChannels.map(
      (ch) =>
        new Promise<number>((resolve) => {
          let bytes = 0;
          ch.on('data', (d: Buffer) => (bytes += d.length));
          ch.once('hostclose', () => resolve(bytes));
        }),
    );
    for (const ch of guestChannels) ch.write('G');
    moved = await Promise.all(reading);
    await Promise.all(hostWrites);
  }
  await guest.destroy();
  return moved.reduce((x, y) => x + y, 0);
}

function mbps(bytes: number, seconds: number): number {
  return bytes / seconds / 1e6;
}

function row(label: string, r: Result, base?: Result): void {
  const wall = mbps(r.bytes, r.seconds);
  const cpu = mbps(r.bytes, r.cpuSeconds);
  const ratio = (x: number, y: number): string => `${(x / y).toFixed(2)}x`.padStart(6);
  const ratios = base ? `  ${ratio(wall, mbps(base.bytes, base.seconds))} ${ratio(cpu, mbps(base.bytes, base.cpuSeconds))}` : '';
  console.log(`${label.padEnd(40)} ${wall.toFixed(0).padStart(7)} ${cpu.toFixed(0).padStart(7)}${ratios}`);
}

async function main(): Promise<void> {
  console.log(`spicedav mux benchmark: ${TOTAL / 2 ** 20} MiB in ${CHUNK} B chunks, node ${process.version}, best of ${RUNS}`);
  console.log(`${''.padEnd(40)} ${'MB/s'.padStart(7)} ${'MB/cpu-s'.padStart(7)}  vs plain (wall, cpu)`);
  // Warm-up, untimed: otherwise whichever scenario runs first pays for JIT compilation of the stream code.
  const total = TOTAL;
  TOTAL = total / 16;
  for (const kind of ['memory', 'unix'] as const) {
    await plain(kind, 1);
    if (kind === 'memory') await hops(1);
    await mux(kind, 1, 'upload');
    await mux(kind, 1, 'download');
  }
  TOTAL = total;
  for (const kind of ['memory', 'unix'] as const) {
    for (const clients of [1, 8]) {
      const label = `${kind}, ${clients} client${clients > 1 ? 's' : ''}`;
      const base = await timed(() => plain(kind, clients));
      if (base.bytes !== TOTAL) throw new Error(`plain moved ${base.bytes} of ${TOTAL} bytes`);
      row(`${label}: plain pipeline`, base);
      if (kind === 'memory') row(`${label}: + 2 PassThrough hops`, await timed(() => hops(clients)), base);
      for (const direction of ['upload', 'download'] as const) {
        const r = await timed(() => mux(kind, clients, direction));
        if (r.bytes !== TOTAL) throw new Error(`mux ${direction} moved ${r.bytes} of ${TOTAL} bytes`);
        row(`${label}: mux ${direction}`, r, base);
      }
    }
  }
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
}

await main();
