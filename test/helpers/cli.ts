import { spawn, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { cliPath } from './paths.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `spicedav ARGS` (the built CLI) to completion, bounded by `timeoutMs`. */
export function runCli(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running `spicedav` (serve, share, guest, demo) started for a test and killed when it ends. */
export interface RunningCli {
  child: ChildProcess;
  /** Everything printed so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves with the first match of `re` in stdout (bounded). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/** How startCli runs the command. */
export interface StartOptions {
  /** Added to the environment. */
  env?: Record<string, string>;
  /** An executable to run instead of the built CLI (e.g. the link an `npm install` made, run through its #! line). */
  bin?: string;
  /** Run as this user and group id (the caller must be root). */
  user?: number;
}

/** Starts `spicedav ARGS`: the built CLI by default. */
export function startCli(t: Pick<TestContext, 'after'>, args: string[], { env = {}, bin, user }: StartOptions = {}): RunningCli {
  const [command, argv] = bin === undefined ? [process.execPath, [cliPath, ...args]] : [bin, args];
  const child = spawn(command, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], uid: user, gid: user });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitFor(re, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = stdout.match(re);
          if (!m) return false;
          clearTimeout(timer);
          child.stdout!.off('data', check);
          resolve(m);
          return true;
        };
        const timer = setTimeout(() => {
          child.stdout!.off('data', check);
          reject(new Error(`no ${re} in stdout within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
        }, timeoutMs);
        if (!check()) child.stdout!.on('data', check);
      });
    },
    async stop(signal = 'SIGINT', timeoutMs = 10_000) {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
