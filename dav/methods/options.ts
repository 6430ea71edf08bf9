import { ALL_METHODS, READ_METHODS, send } from '../respond.js';
import type { MethodHandler } from './types.js';

/**
 * OPTIONS: compliance classes and methods. `MS-Author-Via: DAV` makes Microsoft clients use WebDAV rather
 * than FrontPage extensions. A read-only share advertises class 1 only, so clients that need class 2 for
 * writing (Windows, macOS Finder) mount it read-only instead of failing on the first save.
 */
export const options: MethodHandler = {
  write: false,
  async handle(ctx) {
    send(ctx.res, 200, {
      DAV: ctx.dav.readOnly ? '1' : '1, 2',
      'MS-Author-Via': 'DAV',
      Allow: ctx.dav.readOnly ? READ_METHODS : ALL_METHODS,
      'Accept-Ranges': 'bytes',
    });
  },
};
