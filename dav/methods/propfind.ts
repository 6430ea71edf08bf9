/**
 * PROPFIND (RFC 4918 §9.1): Depth 0, 1 and infinity, allprop (with include), propname and named properties;
 * an empty body is allprop. The multistatus is streamed member by member. Depth infinity is bounded by
 * `maxInfinityEntries`: the tree is counted first and a bigger one is refused with 403 propfind-finite-depth,
 * before any of the answer is sent.
 */
import { DavError, badRequest } from '../errors.js';
import { DAV_NS, childElements, isElement, type XmlElement } from '../xml.js';
import type { DavPath } from '../paths.js';
import { MultiStatus } from '../respond.js';
import { parseDepth, type Depth } from '../headers/depth.js';
import { checkIfHeader } from '../preconditions.js';
import { renderResponse, type PropRequest } from '../props/render.js';
import type { PropEnv } from '../props/live.js';
import type { Entry } from '../storage/backend.js';
import type { RequestContext } from '../context.js';
import type { MethodHandler } from './types.js';

/** Turn a `<D:propfind>` body into a PropRequest; 400 when it is not one. */
export function parsePropfind(body: XmlElement | null): PropRequest {
  if (!body) return { mode: 'allprop', include: [] };
  if (!isElement(body, DAV_NS, 'propfind')) throw badRequest('DAV_ERR_BAD_PROPFIND', 'the body of a PROPFIND must be a DAV:propfind element');
  const kids = childElements(body);
  const prop = kids.find((k) => isElement(k, DAV_NS, 'prop'));
  if (prop) return { mode: 'prop', names: childElements(prop).map((p) => ({ ns: p.ns, name: p.name })) };
  if (kids.some((k) => isElement(k, DAV_NS, 'propname'))) return { mode: 'propname' };
  if (kids.some((k) => isElement(k, DAV_NS, 'allprop'))) {
    const include = kids.find((k) => isElement(k, DAV_NS, 'include'));
    return { mode: 'allprop', include: include ? childElements(include).map((p) => ({ ns: p.ns, name: p.name })) : [] };
  }
  throw badRequest('DAV_ERR_BAD_PROPFIND', 'DAV:propfind must contain prop, propname or allprop');
}

const wantsQuota = (r: PropRequest) =>
  r.mode === 'prop' && r.names.some((n) => n.ns === DAV_NS && (n.name === 'quota-available-bytes' || n.name === 'quota-used-bytes'));

const byName = (a: Entry, b: Entry) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** Count resources below `path`, stopping once past `limit`. */
async function countTree(ctx: RequestContext, path: DavPath, limit: number): Promise<number> {
  let n = 0;
  const stack: DavPath[] = [path];
  while (stack.length && n <= limit) {
    const p = stack.pop() as DavPath;
    const members = await ctx.dav.storage.list(p).catch(() => []);
    n += members.length;
    for (const m of members) if (m.collection) stack.push(m.path);
  }
  return n;
}

/** Rendered responses by entry object (see `memoKey`). */
const rendered = new WeakMap<Entry, { key: string; xml: string }>();

export const propfind: MethodHandler = {
  write: false,
  async handle(ctx) {
    const depth: Depth = parseDepth(ctx.header('depth'), 'infinity');
    const request = parsePropfind(await ctx.readXml());
    const entry = await ctx.entry();
    if (!entry) throw new DavError(404, 'DAV_ERR_NOT_FOUND', `nothing at ${ctx.path}`);
    await checkIfHeader(ctx);
    const { storage, props, locks, limits } = ctx.dav;
    if (depth === 'infinity' && entry.collection) {
      const limit = limits.maxInfinityEntries;
      if (limit === 0 || (await countTree(ctx, ctx.path, limit)) > limit) {
        throw new DavError(403, 'DAV_ERR_INFINITE_DEPTH', `PROPFIND Depth: infinity is limited to ${limit} resources here; use Depth: 1`, {
          condition: { name: 'propfind-finite-depth' },
        });
      }
    }
    const space = wantsQuota(request) ? await storage.space(ctx.path) : null;
    await props.sync(); // what other processes serving this folder changed
    // Entries come back from the listing cache as the same objects while unchanged, so their rendering can be
    // reused; not when locks exist (lockdiscovery shows a live countdown) or quota was asked (it moves).
    const memoKey = locks.size === 0 && !space ? `${JSON.stringify(request)}\0${props.generation}` : null;
    const render = (e: Entry): string => {
      const hit = memoKey ? rendered.get(e) : undefined;
      if (hit && hit.key === memoKey) return hit.xml;
      const env: PropEnv = { locks, space, dead: props.get(e.path), rootName: ctx.dav.rootName };
      const xml = renderResponse(e, request, env);
      if (memoKey) rendered.set(e, { key: memoKey, xml });
      return xml;
    };
    const ms = new MultiStatus(ctx.res);
    await ms.add(render(entry));
    if (depth !== 0 && entry.collection) {
      const walk = async (path: DavPath) => {
        const members = (await storage.list(path).catch(() => [])).sort(byName);
        for (const m of members) {
          await ms.add(render(m));
          if (depth === 'infinity' && m.collection) await walk(m.path);
        }
      };
      await walk(ctx.path);
    }
    await ms.end();
  },
};
