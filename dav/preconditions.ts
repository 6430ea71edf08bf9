/**
 * Evaluating what a request must satisfy before it may act: the If header (RFC 4918 §10.4) against lock
 * tokens and entity tags, and the locks covering the resources a write touches (§7). The If header was parsed
 * to data by `headers/if.ts`; here it is only evaluated.
 */
import { DavError, locked, preconditionFailed } from './errors.js';
import { parentOf, parseUrlPath, hrefOf, type DavPath } from './paths.js';
import { weakMatch } from './headers/conditional.js';
import type { RequestContext } from './context.js';
import type { Lock } from './locks.js';

/** Resolve an If list's resource tag to a DAV path; null when it names another server or is unusable. */
function tagPath(ctx: RequestContext, tag: string): DavPath | null {
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)/.exec(tag);
  if (m && (m[1] ?? '').toLowerCase() !== (ctx.host ?? '').toLowerCase()) return null;
  try {
    return parseUrlPath(tag).path;
  } catch {
    return null;
  }
}

/**
 * Throw 412 unless the If header holds: some list whose every condition is true. A state token is true when a
 * lock with that token covers the list's resource; an entity tag when it matches the resource's current one.
 * `DAV:no-lock` is never a lock token, so `(Not <DAV:no-lock>)` is the usual "always true" list.
 */
export async function checkIfHeader(ctx: RequestContext): Promise<void> {
  const lists = ctx.ifLists();
  if (!lists) return;
  const etags = new Map<DavPath, string | null>();
  const etagOf = async (path: DavPath) => {
    if (!etags.has(path)) {
      const e = path === ctx.path ? await ctx.entry() : await ctx.dav.storage.stat(path).catch(() => null);
      etags.set(path, e?.etag ?? null);
    }
    return etags.get(path) ?? null;
  };
  for (const list of lists) {
    const path = list.resource === null ? ctx.path : tagPath(ctx, list.resource);
    if (path === null) continue;
    let ok = true;
    for (const c of list.conditions) {
      let hit: boolean;
      if (c.token !== undefined) hit = ctx.dav.locks.covering(path).some((l) => l.token === c.token);
      else {
        const etag = await etagOf(path);
        hit = etag !== null && weakMatch(c.etag, etag);
      }
      if (hit === c.not) {
        ok = false;
        break;
      }
    }
    if (ok) return;
  }
  throw preconditionFailed('no list of the If header matched the current state of the resource');
}

/** What a write touches, for the lock check. */
export interface LockScope {
  /** Also the locks rooted below `path` (DELETE, MOVE, COPY onto a collection, depth-infinity LOCK). */
  depthInfinity?: boolean;
  /** The write adds or removes `path` in its parent, so a depth-0 lock on the parent applies too. */
  membership?: boolean;
}

/**
 * Throw 423 (lock-token-submitted, with the lock roots) unless the request submits a token for every lock that
 * applies to `path`. For shared locks, a token of any one shared lock on the same resource suffices.
 */
export function checkLocks(ctx: RequestContext, path: DavPath, scope: LockScope = {}): void {
  const { locks } = ctx.dav;
  const submitted = ctx.submittedTokens();
  const applicable: Lock[] = [...locks.covering(path)];
  if (scope.depthInfinity) applicable.push(...locks.below(path));
  if (scope.membership && path !== '/') applicable.push(...locks.at(parentOf(path)).filter((l) => l.depth === 0));
  if (applicable.length === 0) return;
  const missing = applicable.filter((l) => !submitted.has(l.token) && !(l.scope === 'shared' && sameTarget(l, applicable, submitted)));
  if (missing.length === 0) return;
  throw locked([...new Set(missing.map((l) => hrefOf(l.path, false)))]);
}

/** True when some submitted shared lock has the same root as `l` (tokens of sibling shared locks are interchangeable). */
function sameTarget(l: Lock, all: Lock[], submitted: Set<string>): boolean {
  return all.some((o) => o.scope === 'shared' && o.path === l.path && submitted.has(o.token));
}

/** Refuse writes on a read-only share (403) — the one check every write method starts with. */
export function checkWritable(ctx: RequestContext): void {
  if (ctx.dav.readOnly) throw new DavError(403, 'DAV_ERR_READ_ONLY', 'this share is read-only');
}
