// `npm run fuzz:mux`: the long fuzz run of the mux decoder and sessions (USAGE says how and what).
import { fuzzOnce } from '../test/unit/mux/fuzz-case.js';
import { sessionFuzzOnce } from '../test/integration/mux/session-fuzz-case.js';
import { benchArgs } from './args.js';

const USAGE = `usage: npm run fuzz:mux [-- --decoder N] [--sessions N] [--seed S]

The long fuzz run behind the test suite's short ones: N random byte streams into the FrameDecoder (both
modes; default 2,000,000) and N random frame streams into whole host/guest sessions (default 20,000), from
seeds the tests do not use. A failure prints its seed; replay it with \`--seed <seed> --decoder 1\` (or
\`--sessions 1\`). Exit code 0 means no crash, no hang, no broken invariant.`;

const args = benchArgs(USAGE, { seed: 1_000_000, decoder: 2_000_000, sessions: 20_000 });
// The test suite uses seeds 1..100000 (decoder) and 1..300 (sessions); start past them.
const first = args.seed;
const decoderCases = args.decoder;
const sessionCases = args.sessions;

const unexpected: unknown[] = [];
process.on('uncaughtException', (err) => unexpected.push(err));

function progress(what: string, done: number, total: number, started: number): void {
  const s = (Date.now() - started) / 1000;
  process.stdout.write(`\r${what}: ${done}/${total} (${(done / Math.max(s, 0.001)).toFixed(0)}/s)   `);
}

let started = Date.now();
for (let i = 0; i < decoderCases; i++) {
  const seed = first + i;
  try {
    fuzzOnce(seed);
  } catch (err) {
    console.error(`\ndecoder fuzz failed at seed ${seed}`);
    throw err;
  }
  if (i % 50_000 === 0 || i === decoderCases - 1) progress('decoder', i + 1, decoderCases, started);
}
console.log();

started = Date.now();
for (let i = 0; i < sessionCases; i++) {
  const seed = first + i;
  try {
    await sessionFuzzOnce(seed);
  } catch (err) {
    console.error(`\nsession fuzz failed at seed ${seed}`);
    throw err;
  }
  if (unexpected.length > 0) {
    console.error(`\nsession fuzz: uncaught exception at seed ${seed}`);
    throw unexpected[0];
  }
  if (i % 500 === 0 || i === sessionCases - 1) progress('sessions', i + 1, sessionCases, started);
}
console.log(`\nok: ${decoderCases} decoder streams and ${sessionCases} session streams from seed ${first}`);
