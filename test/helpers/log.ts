import type { Logger } from '../../src/log.js';

/**
 * A logger that keeps each warning, as its message followed by its fields in JSON, for a test to assert on;
 * the other levels are dropped.
 */
export function warningLog(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const log: Logger = { error() {}, info() {}, debug() {}, warn: (fields, msg) => warnings.push(`${msg ?? ''} ${JSON.stringify(fields)}`), child: () => log };
  return { log, warnings };
}
