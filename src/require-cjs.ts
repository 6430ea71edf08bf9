import { createRequire } from 'node:module';

/**
 * `require()` for the CommonJS packages spicedav uses at run time (saxes, commander, fs-extra). Importing a
 * CommonJS package from ESM makes Node's loader scan its source with a WebAssembly lexer, to find its named
 * exports, and that lexer stays resident for the life of the process: on Node 20, `import 'saxes'` costs 5 MiB of
 * memory and `require('saxes')` 0.3 MiB. Host servers are held to 64 MiB, and the guest daemon runs in small VMs.
 * Types still come from `import type`, so nothing is lost to the type checker.
 */
export const requireCjs = createRequire(import.meta.url);
