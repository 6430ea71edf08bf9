import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';

/**
 * The checkout's root, for tests that read non-TypeScript files (examples/, fixtures) or run scripts.
 * Found by walking up from the compiled test file to spicedav's package.json, so it works from dist/ and from
 * any .build/<area>/ directory.
 */
export const repoRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'spicedav') return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
})();

/** The build directory the running test was compiled into (dist/ or .build/<area>/). */
export const buildRoot: string = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The built CLI entry point, to spawn `spicedav` exactly as users run it. */
export const cliPath: string = join(buildRoot, 'src', 'cli', 'index.js');
