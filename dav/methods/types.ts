import type { RequestContext } from '../context.js';

/** A method handler: answers the request or throws DavError. `write` marks methods refused on a read-only share. */
export interface MethodHandler {
  write: boolean;
  handle(ctx: RequestContext): Promise<void>;
}
