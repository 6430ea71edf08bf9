/**
 * The logging surface every component accepts as an option. It is a subset of pino's API, so a pino logger (or
 * a child of one) can be passed as is, and tests can pass a recorder. Structured fields go first,
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

/**
 * Level numbers as pino writes them, so that tools made for pino's lines (pino-pretty, log shippers) read ours.
 * The logger is our own rather than pino: pino and its twelve dependencies cost 2.6 MiB of resident memory in
 * every process, for the few lines a quiet server writes.
 */
const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;
type Level = keyof typeof LEVELS;

/** Formats one log record: its level, the bound and given fields merged, and the message. */
type Format = (level: Level, fields: Record<string, unknown>, msg: string | undefined) => string;

/** The CLI's logger: structured, to stderr, quiet unless asked. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  if (level === 'silent') return silentLogger;
  const destination = options.destination ?? process.stderr;
  const format = options.format === 'json' ? jsonLine : prettyLine;
  return leveled(LEVELS[level], (lv, fields, msg) => destination.write(format(lv, fields, msg)), {});
}

function leveled(threshold: number, emit: (...record: Parameters<Format>) => void, bindings: Record<string, unknown>): Logger {
  const method = (level: Level) =>
    LEVELS[level] < threshold ? () => {} : (obj: object, msg?: string) => emit(level, { ...bindings, ...obj }, msg);
  return {
    error: method('error'),
    warn: method('warn'),
    info: method('info'),
    debug: method('debug'),
    child: (more) => leveled(threshold, emit, { ...bindings, ...more }),
  };
}

/** pino's line format: `{"level":30,"time":<ms>,...fields,"msg":"..."}`. */
const jsonLine: Format = (level, fields, msg) => {
  const record = { level: LEVELS[level], time: Date.now(), ...fields, msg };
  try {
    return JSON.stringify(record, loggable) + '\n';
  } catch {
    // A field that cannot be serialized (a cycle) must not cost the message itself.
    return JSON.stringify({ level: record.level, time: record.time, msg, logError: 'fields not serializable' }) + '\n';
  }
};

/** A short human line: `12:00:01 INFO mux: client opened id=5 bytes=10`. */
const prettyLine: Format = (level, fields, msg) => {
  const { component, ...rest } = fields;
  const time = new Date().toISOString().slice(11, 19);
  const text = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? plain(v) : v instanceof Error ? plain(v.message) : safeJson(v)}`)
    .join(' ');
  return `${time} ${level.toUpperCase()}${component ? ` ${String(component)}:` : ''} ${msg ?? ''}${text ? ' ' + text : ''}\n`;
};

/**
 * A string field (or an error's message) as is, unless it holds control characters (a user name or path from a
 * client, which a system error's message quotes too): then quoted and escaped, so that a field can neither start a
 * forged line nor send escape sequences to the terminal.
 */
function plain(v: string): string {
  return /\p{Cc}/u.test(v) ? JSON.stringify(v) : v;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, loggable) ?? String(v);
  } catch {
    return String(v);
  }
}

/** JSON.stringify replacer: bigints as decimal strings, errors with their name, message, code and stack. */
function loggable(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) {
    const { code } = value as NodeJS.ErrnoException;
    return { type: value.name, message: value.message, ...(code === undefined ? {} : { code }), stack: value.stack };
  }
  return value;
}
