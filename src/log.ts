import { pino } from 'pino';

/**
 * The logging surface every component accepts as an option. It is the subset of pino's API we use, so a pino
 * logger (or a child of one) can be passed as is, and tests can pass a recorder. Structured fields go first,
 * the message second: `log.debug({ id, bytes }, 'client opened')`.
 */
export interface Logger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  child(bindings: object): Logger;
}

/** A logger that drops everything: the default for library use, where the embedding program decides. */
export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  child() {
    return silentLogger;
  },
};

export interface CreateLoggerOptions {
  /** 'info' by default; 'debug' with --verbose. */
  level?: 'error' | 'warn' | 'info' | 'debug' | 'silent';
  /** 'json' writes one JSON object a line (for journald/log shippers); 'pretty' a short human line. */
  format?: 'json' | 'pretty';
  /** Where lines go; stderr by default so stdout stays free for status and data. */
  destination?: NodeJS.WritableStream;
}

/** The CLI's logger: structured, to stderr, quiet unless asked. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const destination = options.destination ?? process.stderr;
  if (options.format === 'json') return pino({ level, base: undefined }, destination);
  // A human format without pulling in pino-pretty: "12:00:01 INFO mux: client opened id=5 bytes=10".
  const stream = {
    write(line: string) {
      const o = JSON.parse(line) as Record<string, unknown>;
      const { level: lv, time, msg, component, ...rest } = o;
      const t = new Date(time as number).toISOString().slice(11, 19);
      const name = pino.levels.labels[lv as number]?.toUpperCase() ?? String(lv);
      const fields = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
        .join(' ');
      destination.write(`${t} ${name}${component ? ` ${String(component)}:` : ''} ${String(msg ?? '')}${fields ? ' ' + fields : ''}\n`);
    },
  };
  return pino({ level, base: undefined }, stream);
}
