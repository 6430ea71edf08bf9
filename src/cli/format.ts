/** Human formats for the status display and log lines. Pure; MB = 10^6 bytes, as every figure in the docs. */

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

/** 1234567 → "1.2 MB". */
export function formatBytes(n: number): string {
  let i = 0;
  let v = n;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[i]}`;
}

/** Bytes per second → "12 MB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.max(0, Math.round(bytesPerSecond)))}/s`;
}

/** A fixed-width bar: progressBar(0.5, 10) → "[#####.....]". Unknown totals show a plain frame. */
export function progressBar(fraction: number | undefined, width = 20): string {
  if (fraction === undefined || !Number.isFinite(fraction)) return `[${'?'.repeat(width)}]`;
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

/** Seconds → "1h02m", "3m05s", "42s", "0.5s": a tenth below ten seconds, so a 500 ms retry is not "1s". */
export function formatDuration(seconds: number): string {
  const tenths = Math.max(0, Math.round(seconds * 10));
  if (tenths < 100) return `${tenths / 10}s`;
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** Cut a path to `max` columns keeping its end, which is the part people recognise. */
export function ellipsize(text: string, max: number): string {
  return text.length <= max ? text : `…${text.slice(text.length - max + 1)}`;
}
