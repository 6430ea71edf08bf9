import type { Command } from './commander.js';
import { createLogger, type Logger } from '../log.js';
import { StatusDisplay, type StatusSnapshot } from './status.js';
import { TransferTracker } from './transfers.js';
import type { DavServer } from '../../dav/index.js';
import { outputClosed } from './broken-pipe.js';
import { CliError, ExitCode } from './exit-codes.js';
import { hasCode } from '../errors.js';

/** Flags every command accepts (declared once on the root program, inherited by sub-commands). */
export interface GlobalOptions {
  verbose?: boolean;
  logFormat?: 'pretty' | 'json';
  /** `--no-status` sets this to false: plain line-per-event output even on a terminal. */
  status?: boolean;
}

/** Quiet by default (warnings and errors only); `--verbose` shows every connection and request. */
export function loggerFor(options: GlobalOptions): Logger {
  return createLogger({ level: options.verbose ? 'debug' : 'warn', format: options.logFormat ?? 'pretty' });
}

/**
 * Runs a long-lived service until SIGINT/SIGTERM, or until its output's reader has gone (see `outputClosed`),
 * then stops it cleanly. A second signal while stopping exits at once (code 130), so a hung shutdown never traps
 * the user. When `fatal` settles with an error first (wrong password, unusable device), the service is stopped
 * and that error is thrown for its exit code.
 */
export async function runUntilSignal(stop: () => Promise<void>, log: Logger, fatal?: Promise<Error | undefined>): Promise<void> {
  let onSignal: ((signal: NodeJS.Signals) => void) | undefined;
  const signalled = new Promise<void>((resolve) => {
    let stopping = false;
    onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting without a clean shutdown');
        process.exit(130);
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  const failed = (fatal ?? new Promise<undefined>(() => {})).then((err) => err);
  const orphaned = outputClosed().then(() => 'orphaned' as const);
  const outcome = await Promise.race([signalled.then(() => undefined), orphaned, failed]);
  if (outcome === 'orphaned') log.info({}, 'output closed: stopping');
  const err = outcome === 'orphaned' ? undefined : outcome;
  await stop();
  process.off('SIGINT', onSignal!);
  process.off('SIGTERM', onSignal!);
  if (err) throw err;
}

/** The global flags as seen from inside a sub-command's action. */
export function globalsOf(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

/** The live status for a long-running command, on stdout; plain lines with --no-status or without a TTY. */
export function statusDisplay(options: GlobalOptions, snapshot: () => StatusSnapshot): StatusDisplay {
  return new StatusDisplay({ stream: process.stdout, snapshot, plain: options.status === false });
}

/**
 * The status display of a command that serves a DavServer: its transfers become progress bars while in flight
 * and event lines when they end. `snapshot` gets the tracker for the transfers and their byte totals.
 */
export function davStatusDisplay(options: GlobalOptions, dav: DavServer, snapshot: (tracker: TransferTracker) => StatusSnapshot): StatusDisplay {
  let display: StatusDisplay | undefined;
  const tracker = new TransferTracker(dav, (line) => display?.event(line));
  display = statusDisplay(options, () => snapshot(tracker));
  return display;
}

/**
 * Waits until `dav` can answer. A property store it cannot open (a home that is not writable, a journal left by
 * another user) ends the command with exit 3 and the option that fixes it; `dav` is destroyed first.
 */
export async function davReady(dav: DavServer): Promise<void> {
  try {
    await dav.ready();
  } catch (err) {
    await dav.destroy();
    if (!hasCode(err, 'DAV_ERR_STATE_UNAVAILABLE')) throw err;
    throw new CliError('CLI_ERR_STATE_DIR', `${(err as Error).message}; give a folder you can write with --state-dir`, ExitCode.ENVIRONMENT, { cause: err });
  }
}
