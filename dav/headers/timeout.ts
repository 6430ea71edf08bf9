/**
 * Parse a Timeout header (RFC 4918 §10.7): `Infinite, Second-4100000000`. Returns the requested durations in
 * seconds, in the client's order of preference (`Infinity` for Infinite). Unknown or malformed entries are
 * skipped: the server chooses the timeout anyway, so a bad header only loses the client's wish.
 */
export function parseTimeout(value: string | undefined): number[] {
  if (value === undefined) return [];
  const out: number[] = [];
  for (const part of value.split(',')) {
    const v = part.trim();
    if (/^infinite$/i.test(v)) out.push(Infinity);
    else {
      const m = /^second-(\d{1,15})$/i.exec(v);
      if (m) out.push(Number(m[1]));
    }
  }
  return out;
}
