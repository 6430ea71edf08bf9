/**
 * The command line of a bench script: `--help` prints its usage; an unknown option, a missing value or a number
 * that is not one is said in one line with the usage, exit code 2, instead of a stack trace, or a 1 GiB run with
 * the defaults when the option was only misspelt.
 */
import { parseArgs } from 'node:util';

/** Option name → default value; every option takes a value. */
type Defaults = Record<string, string | number>;
type Parsed<D extends Defaults> = { [K in keyof D]: D[K] extends number ? number : string };

export function benchArgs<D extends Defaults>(usage: string, defaults: D): Parsed<D> {
  const fail = (message: string): never => {
    console.error(`${message}\n\n${usage}`);
    process.exit(2);
  };
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(usage);
    process.exit(0);
  }
  let values: Record<string, string | boolean | undefined> = {};
  try {
    const options = Object.fromEntries(Object.keys(defaults).map((k) => [k, { type: 'string' as const }]));
    ({ values } = parseArgs({ options, strict: true, allowPositionals: false }));
  } catch (err) {
    fail((err as Error).message);
  }
  const out: Record<string, string | number> = {};
  for (const [name, fallback] of Object.entries(defaults)) {
    const given = values[name];
    if (typeof given !== 'string') out[name] = fallback;
    else if (typeof fallback === 'string') out[name] = given;
    else {
      const n = Number(given);
      if (given.trim() === '' || !Number.isFinite(n) || n <= 0) fail(`--${name} takes a positive number, not '${given}'`);
      out[name] = n;
    }
  }
  return out as Parsed<D>;
}
