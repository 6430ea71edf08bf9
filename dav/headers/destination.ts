import { DavError, badRequest } from '../errors.js';
import { parseUrlPath, type DavPath } from '../paths.js';

/** A parsed Destination header. */
export interface Destination {
  path: DavPath;
  trailingSlash: boolean;
}

/**
 * Parse a Destination header (RFC 4918 §10.3) for COPY/MOVE. An absolute path or an absolute URI whose
 * authority is the request's Host; another host is a 502 (RFC 4918 §9.8.5, "the destination is on another
 * server"). The path goes through the same strict decoding as request paths, so `..`, `%2f`, backslashes or
 * NUL are a 400 here too. The raw text is parsed by hand: WHATWG URL would silently fold `%2e%2e`.
 */
export function parseDestination(value: string | undefined, host: string | undefined): Destination {
  if (value === undefined || value.trim() === '') throw badRequest('DAV_ERR_NO_DESTINATION', 'COPY and MOVE need a Destination header');
  const v = value.trim();
  if (v.startsWith('/')) return parseUrlPath(v);
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(v);
  if (!m) throw badRequest('DAV_ERR_BAD_DESTINATION', `Destination "${v}" is neither an absolute URI nor an absolute path`);
  const scheme = (m[1] ?? '').toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') throw new DavError(502, 'DAV_ERR_OTHER_SERVER', `Destination scheme ${scheme} is not served here`);
  const authority = (m[2] ?? '').toLowerCase();
  if (authority.includes('@')) throw badRequest('DAV_ERR_BAD_DESTINATION', 'Destination must not carry user information');
  if (host === undefined || !sameAuthority(authority, host.toLowerCase(), scheme)) {
    throw new DavError(502, 'DAV_ERR_OTHER_SERVER', `Destination host ${authority} is not this server (${host ?? 'no Host header'})`);
  }
  return parseUrlPath(m[3] || '/');
}

/** Compare two host[:port] authorities, treating an omitted port as the scheme's default. */
function sameAuthority(a: string, b: string, scheme: string): boolean {
  const def = scheme === 'https' ? '443' : '80';
  const norm = (x: string) => (/:\d+$/.test(x) ? x : `${x}:${def}`);
  return norm(a) === norm(b);
}
