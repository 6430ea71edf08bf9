import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The spicedav package: its root folder (where package.json, examples/ and dist/ are) and version, found by
 * walking up from the running file, so it works from dist/, from a build dir, and from a copy in a guest image.
 */
export function packageInfo(): { root: string; version: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = dirname(dir); up !== dir; dir = up, up = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'spicedav' && pkg.version) return { root: dir, version: pkg.version };
  }
  return { root: process.cwd(), version: '0.0.0-unknown' };
}
