#!/usr/bin/env node
/**
 * The `spicedav` command. Each sub-command lives in ./commands/<name>.ts; this file only wires them up and
 * turns failures into a clear message and a documented exit code.
 */
import { CommanderError } from './commander.js';
import { createProgram } from './program.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { commands } from './commands/index.js';
import { tuneV8 } from './v8-tuning.js';
import { outputClosed } from './broken-pipe.js';

async function main(argv: string[]): Promise<number> {
  tuneV8();
  void outputClosed();
  const program = createProgram(commands);
  try {
    await program.parseAsync(argv);
    return ExitCode.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exitCode 0; commander already printed what was needed.
      return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    const e = err as Error & { code?: string };
    process.stderr.write(`spicedav: ${e.message}${e.code && process.env.SPICEDAV_DEBUG ? ` [${e.code}]` : ''}\n`);
    if (process.env.SPICEDAV_DEBUG) process.stderr.write(`${e.stack ?? ''}\n`);
    return exitCodeFor(err);
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`spicedav: internal error: ${String(err)}\n`);
    process.exitCode = ExitCode.FAILURE;
  },
);
