import { DavError } from '../errors.js';
import { hrefOf } from '../paths.js';
import { send } from '../respond.js';
import { checkIfHeader, checkLocks } from '../preconditions.js';
import type { MethodHandler } from './types.js';

/** MKCOL: 201; 405 when something exists, 409 without a parent collection, 415 with a body (no extended MKCOL). */
export const mkcol: MethodHandler = {
  write: true,
  async handle(ctx) {
    const existing = await ctx.entry();
    if (existing) throw new DavError(405, 'DAV_ERR_EXISTS', `${ctx.path} already exists`);
    if (ctx.hasBody()) throw new DavError(415, 'DAV_ERR_MKCOL_BODY', 'MKCOL with a request body is not supported');
    await checkIfHeader(ctx);
    checkLocks(ctx, ctx.path, { membership: true });
    await ctx.dav.storage.mkcol(ctx.path);
    send(ctx.res, 201, { Location: hrefOf(ctx.path, true) });
  },
};
