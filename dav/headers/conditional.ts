/**
 * HTTP conditional requests (RFC 9110 §13): If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
 * evaluated in the order of §13.2.2, and If-Range. Pure: the caller passes the current validators.
 */
import { parseHttpDate } from './http-date.js';

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
