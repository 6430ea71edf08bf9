/**
 * LOCK (RFC 4918 §9.10): new exclusive or shared write locks at depth 0 or infinity, and refreshes (no body,
 * the token in the If header). A LOCK on an unmapped URL creates an empty file and answers 201 (§7.3).
 */
import { DavError, badRequest, preconditionFailed } from '../errors.js';
import { DAV_NS, childElements, escapeText, isElement, serializeElement, type XmlElement } from '../xml.js';
import { sendXml } from '../respond.js';
import { parseDepth } from '../headers/depth.js';
import { parseTimeout } from '../headers/timeout.js';
import { checkIfHeader, checkLocks } from '../preconditions.js';
import { parentOf } from '../paths.js';
import { activeLockXml } from '../props/live.js';
import type { Lock } from '../locks.js';
import type { RequestContext } from '../context.js';
import type { MethodHandler } from './types.js';

function lockBody(lock: Lock, ctx: RequestContext): string {
  return `<D:prop xmlns:D="DAV:"><D:lockdiscovery>${activeLockXml(lock, ctx.dav.locks)}</D:lockdiscovery></D:prop>`;
}

/** Read scope and owner from a `<D:lockinfo>`. */
function parseLockinfo(body: XmlElement): { scope: 'exclusive' | 'shared'; owner: string | null } {
  if (!isElement(body, DAV_NS, 'lockinfo')) throw badRequest('DAV_ERR_BAD_LOCK', 'the body of a LOCK must be a DAV:lockinfo element');
  const kids = childElements(body);
  const scopeEl = kids.find((k) => isElement(k, DAV_NS, 'lockscope'));
  const scopes = scopeEl ? childElements(scopeEl) : [];
  const scope = scopes.some((s) => isElement(s, DAV_NS, 'exclusive')) ? 'exclusive' : scopes.some((s) => isElement(s, DAV_NS, 'shared')) ? 'shared' : null;
  if (!scope) throw badRequest('DAV_ERR_BAD_LOCK', 'lockinfo needs a lockscope of exclusive or shared');
  const typeEl = kids.find((k) => isElement(k, DAV_NS, 'locktype'));
  if (!typeEl || !childElements(typeEl).some((t) => isElement(t, DAV_NS, 'write'))) {
    throw new DavError(422, 'DAV_ERR_BAD_LOCK', 'only write locks exist (locktype write)');
  }
  const ownerEl = kids.find((k) => isElement(k, DAV_NS, 'owner'));
  return { scope, owner: ownerEl ? serializeOwner(ownerEl) : null };
}

/** The owner element is echoed verbatim in lockdiscovery, in the DAV: prefix our documents use. */
function serializeOwner(el: XmlElement): string {
  const inner = el.children.map((c) => (typeof c === 'string' ? escapeText(c) : serializeElement(c))).join('');
  return `<D:owner>${inner}</D:owner>`;
}

export const lock: MethodHandler = {
  write: true,
  async handle(ctx) {
    const body = await ctx.readXml();
    const { locks, storage } = ctx.dav;
    const timeouts = parseTimeout(ctx.header('timeout'));
    if (!body) {
      // Refresh: the lock is named by the token in the If header and must cover the request URI.
      const token = [...ctx.submittedTokens()].find((t) => locks.covering(ctx.path).some((l) => l.token === t));
      if (!token) {
        if (ctx.ifLists() === null) throw badRequest('DAV_ERR_BAD_LOCK', 'a LOCK without body is a refresh and needs the lock token in an If header');
        throw preconditionFailed('the If header names no lock that covers this resource');
      }
      await checkIfHeader(ctx);
      const l = await locks.refresh(token, timeouts);
      sendXml(ctx.res, 200, lockBody(l, ctx));
      return;
    }
    const { scope, owner } = parseLockinfo(body);
    const depth = parseDepth(ctx.header('depth'), 'infinity');
    if (depth === 1) throw badRequest('DAV_ERR_BAD_DEPTH', 'LOCK takes Depth 0 or infinity');
    const existing = await ctx.entry();
    await checkIfHeader(ctx);
    // The empty file a LOCK on an unmapped URL creates is a new member of its folder, a write to that folder, so
    // every lock that covers the folder applies (Apache checks the same; the root always exists). Only what was
    // found missing here is created, so that a 201 always went through this check, even if the host removes the
    // file in between (the lock then waits on an unmapped URL, and a PUT with its token fills it).
    if (!existing) checkLocks(ctx, parentOf(ctx.path));
    const l = await locks.create({ path: ctx.path, depth, scope, owner, timeouts });
    let created = false;
    try {
      if (!existing) created = await storage.createEmpty(ctx.path);
    } catch (err) {
      await locks.remove(l.token);
      throw err;
    }
    sendXml(ctx.res, created ? 201 : 200, lockBody(l, ctx), { 'Lock-Token': `<${l.token}>` });
  },
};
