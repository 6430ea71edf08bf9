/**
 * The HTTP-date (RFC 9110 §5.6.7), read strictly: conditional requests and the Win32 times of MS-WDV use it, and a
 * date read loosely either voids a condition that was meant or stamps a file with a time nobody sent.
 */

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
 * or anything else (a condition with such a date is ignored, as the RFC requires; a Win32 time is refused).
 * (`Date.parse` would take "1" for the year 2001.)
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
