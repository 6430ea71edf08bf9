import { join } from 'node:path';
import { Command, Option } from './commander.js';
import { ExitCode } from './exit-codes.js';
import { packageInfo } from './package-root.js';

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
`;

/** Where this copy's documents are: spicedav has no public site yet, so the help names the files themselves. */
function documentationHelp(root: string): string {
  return `\nDocumentation: ${join(root, 'README.md')}, and docs/ beside it`;
}

/** The `spicedav` root command with the global flags; sub-commands are added by their modules. */
export function createProgram(commands: CommandModule[]): Command {
  const { root, version } = packageInfo();
  const program = new Command('spicedav')
    .description('Share a host folder with a QEMU/libvirt VM over SPICE, as a WebDAV network drive.')
    .version(version, '-V, --version')
    .option('-v, --verbose', 'log every connection and request (to stderr)')
    .addOption(new Option('--log-format <format>', 'log line format').choices(['pretty', 'json']).default('pretty'))
    .option('--no-status', 'plain line-per-event output even on a terminal')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP + documentationHelp(root))
    .exitOverride();
  for (const c of commands) c.register(program);
  // Sub-commands inherit the exit override and the error hint.
  for (const sub of program.commands) sub.exitOverride().showHelpAfterError('(run with --help for usage)');
  return program;
}
