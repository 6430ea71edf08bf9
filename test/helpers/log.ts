import type { Logger } from '../../src/log.js';

/**
 * A logger that keeps each warning and each error, as its message followed by its fields in JSON, for a test to
 * assert on; the other levels are dropped.
 */
export function warningLog(): { log: Logger; warnings: string[]; errors: string[] } {
  const warnings: string[] = [];
  const errors: string[] = [];
  const line = (fields: object, msg?: string): string => `${msg ?? ''} ${JSON.stringify(fields)}`;
  const log: Logger = {
    error: (fields, msg) => errors.push(line(fields, msg)),
    info() {},
    debug() {},
    warn: (fields, msg) => warnings.push(line(fields, msg)),
    child: () => log,
  };
  return { log, warnings, errors };
}
