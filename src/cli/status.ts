import { ellipsize, formatBytes, formatDuration, formatRate, progressBar } from './format.js';

/** One body transfer in flight (a GET download or a PUT upload), as the WebDAV server reports it. */
export interface TransferView {
  method: string;
  path: string;
  direction: 'in' | 'out';
  /** Bytes moved so far. */
  bytes: number;
  /** Content-Length when known. */
  total?: number;
  /** When it started (ms since the epoch), for its rate. */
  startedAt: number;
}

/** What the status block shows; the command builds one of these on every tick. */
export interface StatusSnapshot {
  /** First line, e.g. "sharing /home/me/Public with spice://127.0.0.1:5930". */
  title: string;
  /** The link state in a few words: "linked", "waiting for the guest", "reconnecting in 4s". */
  state: string;
  /** Open client connections (guest TCP connections / mux channels), when the command knows them. */
  connections?: number;
  /** Cumulative bytes toward the server (uploads) and toward the clients (downloads). */
  bytesIn: number;
  bytesOut: number;
  transfers: TransferView[];
}

/** Only transfers of at least this size (or of unknown size) get a progress line; small files would flicker. */
export const PROGRESS_MIN_BYTES = 1_000_000;
const MAX_TRANSFER_LINES = 5;

/**
 * Renders the status block as lines no wider than `width`. Pure, so it is tested directly.
 * `rateIn`/`rateOut` are bytes per second over the last interval; `now` is used for per-transfer rates.
 */
export function renderStatus(s: StatusSnapshot, rateIn: number, rateOut: number, now: number, width = 80): string[] {
  const lines = [
    s.title,
    `${s.state} · ${s.connections === undefined ? '' : `${s.connections} connection${s.connections === 1 ? '' : 's'} · `}` +
      `↓ ${formatRate(rateOut)} (${formatBytes(s.bytesOut)}) · ↑ ${formatRate(rateIn)} (${formatBytes(s.bytesIn)})`,
  ];
  const shown = s.transfers.filter((t) => t.total === undefined || t.total >= PROGRESS_MIN_BYTES);
  for (const t of shown.slice(0, MAX_TRANSFER_LINES)) {
    const elapsed = Math.max(0.001, (now - t.startedAt) / 1000);
    const rate = t.bytes / elapsed;
    const fraction = t.total ? t.bytes / t.total : undefined;
    const eta = t.total && rate > 0 ? ` ${formatDuration((t.total - t.bytes) / rate)} left` : '';
    const size = t.total ? `${formatBytes(t.bytes)}/${formatBytes(t.total)}` : formatBytes(t.bytes);
    const head = `${t.direction === 'in' ? '↑' : '↓'} ${t.method} `;
    const tail = ` ${progressBar(fraction, 16)} ${size} ${formatRate(rate)}${eta}`;
    lines.push(head + ellipsize(t.path, Math.max(8, width - head.length - tail.length)) + tail);
  }
  if (shown.length > MAX_TRANSFER_LINES) lines.push(`… and ${shown.length - MAX_TRANSFER_LINES} more transfers`);
  return lines.map((l) => (l.length > width ? l.slice(0, width - 1) + '…' : l));
}

export interface StatusDisplayOptions {
  /** Where to draw; the status goes to stdout so logs (stderr) and status don't interleave in files. */
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Redraw period in ms. */
  intervalMs?: number;
  /** Builds the current snapshot. */
  snapshot: () => StatusSnapshot;
  /** Force plain line-per-event mode even on a terminal (e.g. --no-status, or NO_COLOR-style dumb terminals). */
  plain?: boolean;
}

/**
 * The live status of a long-running command. On a terminal it redraws a small block in place (state,
 * connections, rates, one progress bar per large transfer) with events printed above it; elsewhere (a pipe,
 * a journal) it prints one plain line per event and never redraws.
 */
export class StatusDisplay {
  readonly interactive: boolean;
  #options: StatusDisplayOptions;
  #timer: NodeJS.Timeout | undefined;
  #drawn = 0;
  #last = { at: Date.now(), bytesIn: 0, bytesOut: 0 };
  #rateIn = 0;
  #rateOut = 0;

  constructor(options: StatusDisplayOptions) {
    this.#options = options;
    this.interactive = Boolean(options.stream.isTTY) && !options.plain && process.env.TERM !== 'dumb';
  }

  start(): void {
    if (!this.interactive || this.#timer) return;
    this.#timer = setInterval(() => this.#draw(), this.#options.intervalMs ?? 250);
    this.#timer.unref();
    this.#draw();
  }

  /** Prints a line that stays (an event); on a terminal it goes above the status block. */
  event(line: string): void {
    const out = this.#options.stream;
    if (!this.interactive) {
      out.write(`${line}\n`);
      return;
    }
    this.#clear();
    out.write(`${line}\n`);
    this.#draw();
  }

  /** Stops redrawing and leaves the last block on screen. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.interactive) this.#draw();
    this.#drawn = 0;
  }

  #clear(): void {
    if (this.#drawn === 0) return;
    // Cursor up to the first line of the block, then clear to the end of the screen.
    this.#options.stream.write(`\x1b[${this.#drawn}F\x1b[J`);
    this.#drawn = 0;
  }

  #draw(): void {
    const s = this.#options.snapshot();
    const now = Date.now();
    const dt = (now - this.#last.at) / 1000;
    if (dt >= 0.2) {
      // Exponential smoothing keeps the rate readable while still following changes within a second or two.
      const a = Math.min(1, dt / 1.5);
      this.#rateIn = this.#rateIn * (1 - a) + ((s.bytesIn - this.#last.bytesIn) / dt) * a;
      this.#rateOut = this.#rateOut * (1 - a) + ((s.bytesOut - this.#last.bytesOut) / dt) * a;
      this.#last = { at: now, bytesIn: s.bytesIn, bytesOut: s.bytesOut };
    }
    const width = Math.max(40, (this.#options.stream.columns ?? 80) - 1);
    const lines = renderStatus(s, this.#rateIn, this.#rateOut, now, width);
    this.#clear();
    this.#options.stream.write(lines.map((l) => `${l}\x1b[K\n`).join(''));
    this.#drawn = lines.length;
  }
}
