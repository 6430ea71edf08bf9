import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** True when `name` is an executable on PATH. */
export function haveTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${JSON.stringify(name)}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Gate a test on an external program (litmus, qemu-system-x86_64, spicy...). On a developer machine without it
 * the test is skipped with the package to install; under CI (`CI=true`) a missing tool is a failure, because
 * .ci/run installs every one of them and a silently skipped interop test proves nothing.
 * Returns false when the caller should return early.
 */
export function requireTool(t: TestContext, name: string, debianPackage = name): boolean {
  if (haveTool(name)) return true;
  const why = `${name} is not installed (apt-get install ${debianPackage})`;
  if (process.env.CI === 'true') throw new Error(`${why}; .ci/run should have installed it`);
  t.skip(why);
  return false;
}
