/**
 * HTTP conditional requests (RFC 9110 §13): If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
 * evaluated in the order of §13.2.2, and If-Range. Pure: the caller passes the current validators.
 */

/** The current validators of the target resource; `etag` null means the resource does not exist. */
export interface Validators {
  etag: string | null;
  lastModified: Date | null;
}

/** The request headers the evaluation reads (lower-case names, as Node gives them). */
export interface ConditionalHeaders {
  'if-match'?: string | undefined;
  'if-none-match'?: string | undefined;
  'if-modified-since'?: string | undefined;
  'if-unmodified-since'?: string | undefined;
}

/** Outcome: go on, answer 304 Not Modified, or answer 412 Precondition Failed. */
export type ConditionalOutcome = 'proceed' | 304 | 412;

/** Split an entity-tag list (`"a", W/"b"`) or `*`. */
export function parseEtagList(value: string): string[] | '*' {
  if (value.trim() === '*') return '*';
  return value.match(/(?:W\/)?"[^"]*"/g) ?? [];
}

const opaque = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag);

/** Strong comparison: both tags strong and identical (RFC 9110 §8.8.3.2). */
export function strongMatch(a: string, b: string): boolean {
  return !a.startsWith('W/') && !b.startsWith('W/') && a === b;
}

/** Weak comparison: opaque parts identical. */
export function weakMatch(a: string, b: string): boolean {
  return opaque(a) === opaque(b);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = String.raw`(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)`;
const LONG_DAY = String.raw`(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)`;
const MONTH = `(${MONTHS.join('|')})`;
const TIME = String.raw`(\d\d):(\d\d):(\d\d)`;
/** The three forms of RFC 9110 §5.6.7, as [pattern, index of day, month, year, hour] in the match. */
const HTTP_DATES: [RegExp, number, number, number, number][] = [
  [new RegExp(String.raw`^${DAY}, (\d\d) ${MONTH} (\d{4}) ${TIME} GMT$`), 1, 2, 3, 4], // IMF-fixdate
  [new RegExp(String.raw`^${LONG_DAY}, (\d\d)-${MONTH}-(\d\d) ${TIME} GMT$`), 1, 2, 3, 4], // obsolete RFC 850
  [new RegExp(String.raw`^${DAY} ${MONTH} ( \d|\d\d) ${TIME} (\d{4})$`), 2, 1, 6, 3], // obsolete asctime
];

/**
 * Parse an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms); null when absent
 * or anything else, which makes its condition be ignored, as the RFC requires. (`Date.parse` would take "1" for
 * the year 2001.)
 */
export function parseHttpDate(value: string | undefined): Date | null {
  if (value === undefined) return null;
  const text = value.trim();
  for (const [pattern, day, month, year, hour] of HTTP_DATES) {
    const m = pattern.exec(text);
    if (!m) continue;
    const n = (i: number) => Number(m[i]);
    let y = n(year);
    // A two-digit year more than 50 years ahead is in the past century (RFC 9110 §5.6.7).
    if ((m[year] as string).length === 2) y += y + 2000 > new Date().getUTCFullYear() + 50 ? 1900 : 2000;
    const [h, min, sec] = [n(hour), n(hour + 1), n(hour + 2)];
    if (h > 23 || min > 59 || sec > 60) return null;
    const date = new Date(0);
    date.setUTCFullYear(y, MONTHS.indexOf(m[month] as string), n(day)); // not Date.UTC, which reads 0–99 as 19xx
    date.setUTCHours(h, min, Math.min(sec, 59));
    // 31 Feb rolls over into March: a day the month does not have is no date.
    return date.getUTCDate() === n(day) ? date : null;
  }
  return null;
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/** Evaluate the conditional headers for a request with the given method (RFC 9110 §13.2.2). */
export function evaluateConditionals(method: string, h: ConditionalHeaders, v: Validators): ConditionalOutcome {
  const readOnly = method === 'GET' || method === 'HEAD';
  if (h['if-match'] !== undefined) {
    const list = parseEtagList(h['if-match']);
    const ok = v.etag !== null && (list === '*' || list.some((t) => strongMatch(t, v.etag as string)));
    if (!ok) return 412;
  } else if (h['if-unmodified-since'] !== undefined) {
    const d = parseHttpDate(h['if-unmodified-since']);
    if (d && v.lastModified && seconds(v.lastModified) > seconds(d)) return 412;
  }
  if (h['if-none-match'] !== undefined) {
    const list = parseEtagList(h['if-none-match']);
    const match = v.etag !== null && (list === '*' || list.some((t) => weakMatch(t, v.etag as string)));
    if (match) return readOnly ? 304 : 412;
  } else if (readOnly && h['if-modified-since'] !== undefined) {
    const d = parseHttpDate(h['if-modified-since']);
    if (d && v.lastModified && seconds(v.lastModified) <= seconds(d)) return 304;
  }
  return 'proceed';
}

/**
 * If-Range (RFC 9110 §13.1.5): true when the Range header may be honoured. An entity-tag must match strongly;
 * a date must equal Last-Modified exactly.
 */
export function ifRangeAllows(value: string | undefined, v: Validators): boolean {
  if (value === undefined) return true;
  const t = value.trim();
  if (t.startsWith('"') || t.startsWith('W/')) return v.etag !== null && strongMatch(t, v.etag);
  const d = parseHttpDate(t);
  return d !== null && v.lastModified !== null && seconds(d) === seconds(v.lastModified);
}
