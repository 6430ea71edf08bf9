/**
 * COPY and MOVE (RFC 4918 §9.8, §9.9): Destination on this server and inside the share, Depth, Overwrite.
 * Dead properties travel with the resource; locks do not (a moved resource leaves its locks behind, and the
 * source's locks are released).
 */
import { DavError, forbidden, notFound } from '../errors.js';
import { hrefOf, isWithin } from '../paths.js';
import { MultiStatus, send, statusResponse } from '../respond.js';
import { parseDepth } from '../headers/depth.js';
import { parseOverwrite } from '../headers/overwrite.js';
import { parseDestination } from '../headers/destination.js';
import { checkIfHeader, checkLocks } from '../preconditions.js';
import type { RequestContext } from '../context.js';
import type { MethodHandler } from './types.js';

async function copyOrMove(ctx: RequestContext, move: boolean): Promise<void> {
  const src = await ctx.entry();
  if (!src) throw notFound(ctx.path);
  const dest = parseDestination(ctx.header('destination'), ctx.host).path;
  const depth = parseDepth(ctx.header('depth'), 'infinity');
  if (depth === 1 || (move && depth !== 'infinity')) throw new DavError(400, 'DAV_ERR_BAD_DEPTH', `${move ? 'MOVE needs Depth: infinity' : 'COPY takes Depth 0 or infinity'}`);
  const overwrite = parseOverwrite(ctx.header('overwrite'));
  if (dest === ctx.path) throw forbidden('source and destination are the same resource');
  if (dest === '/' || ctx.path === '/') throw forbidden('the root of the share cannot be copied over or moved');
  if (isWithin(dest, ctx.path) || isWithin(ctx.path, dest)) throw forbidden('source and destination must not contain each other');
  await checkIfHeader(ctx);
  if (move) checkLocks(ctx, ctx.path, { depthInfinity: true, membership: true });
  checkLocks(ctx, dest, { depthInfinity: true, membership: true });
  const { storage, props, locks } = ctx.dav;
  const existing = await storage.stat(dest);
  // The storage answers an existing destination with Overwrite: F (412), except when it is the source itself
  // under another name (a host that ignores case: MOVE renames, COPY is 403). With Overwrite: T it replaces the
  // destination so that a copy which fails part-way (a full disk) leaves the old one whole.
  const failures = move ? await storage.move(ctx.path, dest, overwrite) : await storage.copy(ctx.path, dest, src.collection ? depth : 0, overwrite);
  if (failures.length) {
    const ms = new MultiStatus(ctx.res);
    for (const f of failures) await ms.add(statusResponse(hrefOf(f.path, false), f.error.status, f.error));
    await ms.end();
    return;
  }
  if (existing) await props.removeTree(dest);
  if (move) {
    await props.moveTree(ctx.path, dest);
    await locks.removeWithin(ctx.path);
  } else if (depth === 'infinity') {
    await props.copyTree(ctx.path, dest);
  } else {
    await props.copyOwn(ctx.path, dest);
  }
  send(ctx.res, existing ? 204 : 201, existing ? {} : { Location: hrefOf(dest, src.collection) });
}

/** COPY: 201 created, 204 overwritten, 412 Overwrite F on an existing destination, 409 without parent, 502 other host. */
export const copy: MethodHandler = { write: true, handle: (ctx) => copyOrMove(ctx, false) };
/** MOVE: as COPY, then the source is gone. */
export const move: MethodHandler = { write: true, handle: (ctx) => copyOrMove(ctx, true) };
