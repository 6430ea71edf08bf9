import { DavError, forbidden, notFound } from '../errors.js';
import { hrefOf } from '../paths.js';
import { MultiStatus, send, statusResponse } from '../respond.js';
import { parseDepth } from '../headers/depth.js';
import { checkIfHeader, checkLocks } from '../preconditions.js';
import type { MethodHandler } from './types.js';

/**
 * DELETE: the resource and everything below it. 204 when all is gone; when some members could not be removed,
 * a 207 naming only those (RFC 4918 §9.6.1). Locks rooted in the removed tree go with it, and its dead properties.
 */
export const del: MethodHandler = {
  write: true,
  async handle(ctx) {
    if (ctx.path === '/') throw forbidden('the root of the share cannot be deleted');
    const entry = await ctx.entry();
    if (!entry) throw notFound(ctx.path);
    if (entry.collection && parseDepth(ctx.header('depth'), 'infinity') !== 'infinity') {
      throw new DavError(400, 'DAV_ERR_BAD_DEPTH', 'DELETE on a collection must have Depth: infinity');
    }
    await checkIfHeader(ctx);
    checkLocks(ctx, ctx.path, { depthInfinity: true, membership: true });
    const failures = await ctx.dav.storage.remove(ctx.path);
    // Properties and locks of the whole tree go, even after a partial failure: the members that stayed keep
    // their content but lose their dead properties rather than leaving stale ones for later resources.
    await ctx.dav.props.removeTree(ctx.path);
    await ctx.dav.locks.removeWithin(ctx.path);
    if (failures.length === 0) {
      send(ctx.res, 204);
      return;
    }
    const ms = new MultiStatus(ctx.res);
    for (const f of failures) await ms.add(statusResponse(hrefOf(f.path, false), f.error.status, f.error));
    await ms.end();
  },
};
