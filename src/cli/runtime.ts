import { createLogger, type Logger } from '../log.js';

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
 * Runs a long-lived service until SIGINT/SIGTERM, then stops it cleanly. A second signal while stopping
 * exits at once (code 130), so a hung shutdown never traps the user.
 */
export async function runUntilSignal(stop: () => Promise<void>, log: Logger): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting without a clean shutdown');
        process.exit(130);
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      stop().then(resolve, reject);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
