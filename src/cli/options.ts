import { InvalidArgumentError } from './commander.js';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError, ExitCode } from './exit-codes.js';

/** commander parser for a TCP port (0 allowed only where `allowZero`). */
export function portOption(allowZero = false) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n > 65535 || (n === 0 && !allowZero)) {
      throw new InvalidArgumentError(`"${value}" is not a TCP port (1-65535${allowZero ? ', or 0 for any free port' : ''})`);
    }
    return n;
  };
}

/** commander parser for a duration in seconds (fractions allowed), returned in milliseconds. */
export function secondsOption(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`"${value}" is not a number of seconds`);
  return Math.round(n * 1000);
}

/** The folder to share: must exist and be a directory; the error says so plainly. */
export function shareDir(dir: string): string {
  const abs = resolve(dir);
  let isDir = false;
  try {
    isDir = statSync(abs).isDirectory();
  } catch {
    throw new CliError('CLI_ERR_NO_FOLDER', `the folder ${abs} does not exist; create it or name another one`, ExitCode.ENVIRONMENT);
  }
  if (!isDir) throw new CliError('CLI_ERR_NOT_A_FOLDER', `${abs} is a file, not a folder; name the folder to share`, ExitCode.ENVIRONMENT);
  return abs;
}

/**
 * The SPICE password: from `--password-file` (first line), else the SPICE_PASSWORD environment variable.
 * Never from the command line, where every user of the machine can read it in the process list.
 */
export function spicePassword(passwordFile: string | undefined): string | undefined {
  if (passwordFile) {
    try {
      return readFileSync(passwordFile, 'utf8').split(/\r?\n/)[0];
    } catch (err) {
      throw new CliError('CLI_ERR_PASSWORD_FILE', `cannot read the password file ${passwordFile}: ${(err as Error).message}`, ExitCode.ENVIRONMENT);
    }
  }
  return process.env.SPICE_PASSWORD || undefined;
}

/** Reads a file named by an option (certificate, key, htpasswd), with an error naming the option. */
export function readOptionFile(option: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new CliError('CLI_ERR_FILE', `${option} ${path}: ${(err as Error).message}`, ExitCode.ENVIRONMENT);
  }
}
