/** One satisfiable byte range, inclusive bounds. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parse a Range header (RFC 9110 §14.1.2) against a representation of `size` bytes.
 * - `null`: serve the whole representation (no header, another unit, a syntax error, or more than `maxRanges`
 *   ranges after coalescing — a server may ignore Range, and that bounds the work a hostile header can cause);
 * - `'unsatisfiable'`: answer 416;
 * - otherwise the ranges in the client's order (sorted and merged when some overlap).
 */
export function parseRange(value: string | undefined, size: number, maxRanges: number): ByteRange[] | 'unsatisfiable' | null {
  if (value === undefined) return null;
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(value);
  if (!m) return null;
  const specs = (m[1] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length === 0 || specs.length > maxRanges * 4) return null;
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const r = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
    if (!r || (r[1] === '' && r[2] === '')) return null;
    if (r[1] === '') {
      const suffix = Number(r[2]);
      if (suffix === 0 || size === 0) continue;
      ranges.push({ start: Math.max(0, size - suffix), end: size - 1 });
    } else {
      const start = Number(r[1]);
      const end = r[2] === '' ? size - 1 : Math.min(Number(r[2]), size - 1);
      if (r[2] !== '' && Number(r[2]) < start) return null;
      if (start >= size) continue;
      ranges.push({ start, end });
    }
  }
  if (ranges.length === 0) return 'unsatisfiable';
  // Keep the client's order unless ranges overlap; then sort and merge them (RFC 9110 lets a server coalesce),
  // so that `bytes=0-,0-,0-...` cannot make us send the file many times.
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  if (sorted.every((r, i) => i === 0 || r.start > (sorted[i - 1] as ByteRange).end)) {
    return ranges.length > maxRanges ? null : ranges;
  }
  const merged: ByteRange[] = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    if (last && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
    else merged.push({ ...r });
  }
  return merged.length > maxRanges ? null : merged;
}
