import { DavError, badRequest } from '../errors.js';
import { send } from '../respond.js';
import type { MethodHandler } from './types.js';

/** UNLOCK (RFC 4918 §9.11): 204; 400 without a Lock-Token header; 409 when the token locks nothing here. */
export const unlock: MethodHandler = {
  write: true,
  async handle(ctx) {
    const m = /^\s*<([^>]+)>\s*$/.exec(ctx.header('lock-token') ?? '');
    if (!m) throw badRequest('DAV_ERR_BAD_LOCK_TOKEN', 'UNLOCK needs a Lock-Token header: <urn:uuid:...>');
    const token = m[1] as string;
    const { locks } = ctx.dav;
    if (!locks.covering(ctx.path).some((l) => l.token === token)) {
      throw new DavError(409, 'DAV_ERR_LOCK_TOKEN_MISMATCH', `no lock ${token} covers ${ctx.path}`, { condition: { name: 'lock-token-matches-request-uri' } });
    }
    await locks.remove(token);
    send(ctx.res, 204);
  },
};
