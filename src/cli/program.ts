import { Command, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode } from './exit-codes.js';

/** spicedav's version, from the package.json above the built file (dist/, a build dir, or a guest image). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = dirname(dir); up !== dir; dir = up, up = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'spicedav' && pkg.version) return pkg.version;
  }
  return '0.0.0-unknown';
}

/** One sub-command: `register` adds it (with its options, help and action) to the root program. */
export interface CommandModule {
  register(program: Command): void;
}

const EXIT_CODES_HELP = `
Exit codes:
  ${ExitCode.OK}  done, or stopped cleanly (Ctrl-C / SIGTERM)
  ${ExitCode.FAILURE}  unexpected failure
  ${ExitCode.USAGE}  wrong command line
  ${ExitCode.ENVIRONMENT}  environment not ready (folder, device or port missing, VM without a webdav port)
  ${ExitCode.CONNECTION}  could not connect or authenticate (SPICE refused, wrong password, TLS)
  ${ExitCode.DOCTOR_PROBLEMS}  doctor found problems

Documentation: README.md, or https://www.npmjs.com/package/spicedav`;

/** The `spicedav` root command with the global flags; sub-commands are added by their modules. */
export function createProgram(commands: CommandModule[]): Command {
  const program = new Command('spicedav')
    .description('Share a host folder with a QEMU/libvirt VM over SPICE, as a WebDAV network drive.')
    .version(packageVersion(), '-V, --version')
    .option('-v, --verbose', 'log every connection and request (to stderr)')
    .addOption(new Option('--log-format <format>', 'log line format').choices(['pretty', 'json']).default('pretty'))
    .option('--no-status', 'plain line-per-event output even on a terminal')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride();
  for (const c of commands) c.register(program);
  // Sub-commands inherit the exit override and the error hint.
  for (const sub of program.commands) sub.exitOverride().showHelpAfterError('(run with --help for usage)');
  return program;
}
