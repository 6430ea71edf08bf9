/**
 * spicedav's public library API: `import { ... } from 'spicedav'`.
 * Each layer exports its entry points here; internals stay internal.
 */
export { SpicedavError, hasCode } from './errors.js';
export { createLogger, silentLogger } from './log.js';
export type { Logger, CreateLoggerOptions } from './log.js';
