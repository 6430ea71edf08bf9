/**
 * One `<D:response>` of a PROPFIND multistatus: allprop (+include), propname or named properties, with found
 * properties in a 200 propstat and unknown ones in a 404 propstat (RFC 4918 §9.1).
 */
import { hrefOf } from '../paths.js';
import { escapeText } from '../xml.js';
import { statusLine } from '../respond.js';
import type { Entry } from '../storage/backend.js';
import { propKey, splitKey } from './dead-store.js';
import { ALLPROP_KEYS, LIVE, emptyProp, renderLive, type PropEnv, type PropName } from './live.js';

/** What a PROPFIND asks for. */
export type PropRequest = { mode: 'allprop'; include: PropName[] } | { mode: 'propname' } | { mode: 'prop'; names: PropName[] };

const OK = `<D:status>${statusLine(200)}</D:status></D:propstat>`;
const MISSING = `<D:status>${statusLine(404)}</D:status></D:propstat>`;

/** Render the response element for one resource. */
export function renderResponse(e: Entry, request: PropRequest, env: PropEnv): string {
  let found = '';
  let missing = '';
  const dead = env.dead;
  if (request.mode === 'propname') {
    for (const [key, live] of LIVE) {
      if (live.render(e, env) !== null || dead?.has(key)) found += emptyProp(splitKey(key));
    }
    for (const key of dead?.keys() ?? []) if (!LIVE.has(key)) found += emptyProp(splitKey(key));
  } else if (request.mode === 'allprop') {
    const seen = new Set<string>();
    for (const key of ALLPROP_KEYS) {
      const xml = renderLive(key, e, env);
      if (xml !== null) found += xml;
      seen.add(key);
    }
    for (const [key, xml] of dead ?? []) {
      if (!seen.has(key)) found += xml;
      seen.add(key);
    }
    for (const p of request.include) {
      const key = propKey(p.ns, p.name);
      if (seen.has(key)) continue;
      seen.add(key);
      const xml = renderLive(key, e, env);
      if (xml !== null) found += xml;
    }
  } else {
    for (const p of request.names) {
      const key = propKey(p.ns, p.name);
      const xml = LIVE.has(key) ? renderLive(key, e, env) : (dead?.get(key) ?? null);
      if (xml !== null) found += xml;
      else missing += emptyProp(p);
    }
  }
  let out = `<D:response><D:href>${escapeText(hrefOf(e.path, e.collection))}</D:href>`;
  if (found || !missing) out += `<D:propstat><D:prop>${found}</D:prop>${OK}`;
  if (missing) out += `<D:propstat><D:prop>${missing}</D:prop>${MISSING}`;
  return out + '</D:response>';
}
