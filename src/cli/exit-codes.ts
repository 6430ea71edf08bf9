import { SpicedavError } from '../errors.js';

/**
 * The `spicedav` exit codes, documented in the README and in `spicedav --help`. Scripts (systemd units,
 * CI jobs) branch on them, so they never change meaning.
 */
export const ExitCode = {
  /** Done, or stopped cleanly by SIGINT/SIGTERM. */
  OK: 0,
  /** An unexpected failure at run time (a bug, or an I/O error we could not classify). */
  FAILURE: 1,
  /** The command line is wrong: unknown flag, missing argument, bad value. */
  USAGE: 2,
  /** The environment is not ready: folder missing, device missing, port in use, VM without a webdav port. */
  ENVIRONMENT: 3,
  /** Could not reach or authenticate to the peer: SPICE refused the link, wrong password, TLS failure. */
  CONNECTION: 4,
  /** `spicedav doctor` found problems (it printed each one with its fix). */
  DOCTOR_PROBLEMS: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error meant for the person at the terminal: the message says what went wrong and what to do. */
export class CliError extends SpicedavError {
  readonly exitCode: ExitCode;
  constructor(code: string, message: string, exitCode: ExitCode, options?: { cause?: unknown }) {
    super(code, message, options);
    this.exitCode = exitCode;
  }
}

/** Maps any error to the exit code it deserves, by its stable code's layer and meaning. */
export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof CliError) return err.exitCode;
  const code = typeof err === 'object' && err !== null ? String((err as { code?: unknown }).code ?? '') : '';
  if (code.startsWith('SPICE_ERR_')) return code === 'SPICE_ERR_CHANNEL_NOT_AVAILABLE' ? ExitCode.ENVIRONMENT : code === 'SPICE_ERR_INVALID_URI' ? ExitCode.USAGE : ExitCode.CONNECTION;
  if (['ENOENT', 'ENOTDIR', 'EACCES', 'EADDRINUSE', 'EADDRNOTAVAIL', 'EPERM'].includes(code)) return ExitCode.ENVIRONMENT;
  if (/^(GUEST_ERR_(DEVICE_OPEN|BAD_DEVICE|ADDRESS_IN_USE|LISTEN)|HOST_ERR_(NO_WEBDAV_PORT|NO_VIRSH|DOMAIN_NOT_FOUND|NO_SPICE_DISPLAY|LIBVIRT)|DAV_ERR_(ROOT|STATE|AUTH_FILE))/.test(code)) return ExitCode.ENVIRONMENT;
  if (['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET'].includes(code)) return ExitCode.CONNECTION;
  return ExitCode.FAILURE;
}
