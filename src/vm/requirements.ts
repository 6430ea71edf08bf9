import { execFileSync } from 'node:child_process';

/**
 * Host programs or files that a guest image or a VM needs are missing. `packages` names the Debian packages
 * that provide them, so the message can say exactly what to install.
 */
export class MissingPackagesError extends Error {
  readonly packages: string[];
  constructor(what: string[], packages: string[]) {
    const pkgs = [...new Set(packages)];
    super(`${what.join(', ')} ${what.length > 1 ? 'are' : 'is'} missing: apt-get install ${pkgs.join(' ')}`);
    this.name = 'MissingPackagesError';
    this.packages = pkgs;
  }
}

/** The absolute path of `program` on PATH, or undefined. */
export function findProgram(program: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v "$1"', 'which', program], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks that every `[program, debianPackage]` is on PATH; throws one MissingPackagesError naming all that are
 * not (so the user installs them in one go rather than one per attempt).
 */
export function requirePrograms(programs: Array<[program: string, debianPackage: string]>): Map<string, string> {
  const found = new Map<string, string>();
  const missing: Array<[string, string]> = [];
  for (const [program, pkg] of programs) {
    const p = findProgram(program);
    if (p) found.set(program, p);
    else missing.push([program, pkg]);
  }
  if (missing.length) throw new MissingPackagesError(missing.map(([p]) => p), missing.map(([, pkg]) => pkg));
  return found;
}
