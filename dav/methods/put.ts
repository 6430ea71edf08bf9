/**
 * PUT: streamed to a temporary file in the target directory with backpressure, then renamed over the target
 * (storage.prepareWrite / commit). Everything that can refuse the request is checked before the body is accepted, so with
 * `Expect: 100-continue` a refused upload never sends its body.
 */
import { DavError, preconditionFailed } from '../errors.js';
import { hrefOf, parentOf } from '../paths.js';
import { send } from '../respond.js';
import { evaluateConditionals } from '../headers/conditional.js';
import { parseOcChecksum } from '../headers/oc-checksum.js';
import { badUnixTime, parseUnixTime } from '../headers/unix-time.js';
import { checkIfHeader, checkLocks } from '../preconditions.js';
import { Transfer } from '../transfer.js';
import type { RequestContext } from '../context.js';
import type { MethodHandler } from './types.js';

/** The headers that make a PUT depend on the target's state. */
const CONDITIONS = ['if-match', 'if-none-match', 'if-unmodified-since', 'if'];

/** Whether the request made its PUT depend on the target's state. */
function conditional(ctx: RequestContext): boolean {
  return CONDITIONS.some((h) => ctx.header(h) !== undefined);
}

/**
 * `X-OC-Mtime` (ownCloud's and Nextcloud's PUT header, sent by rclone with vendor=nextcloud or owncloud and by sync
 * clients): the upload's modification time in Unix seconds, so that a copy keeps its date. Refused like Nextcloud
 * does, before the body, when it is not a usable time.
 */
function requestedMtime(ctx: RequestContext): number | undefined {
  const raw = ctx.header('x-oc-mtime');
  if (raw === undefined) return undefined;
  const seconds = parseUnixTime(raw);
  if (seconds === null) throw badUnixTime(400, 'DAV_ERR_BAD_MTIME', 'X-OC-Mtime', raw);
  return seconds;
}

/**
 * The size of the coming body: its Content-Length, else `X-Expected-Entity-Length`, which macOS Finder sends with
 * its chunked uploads (for the progress display and the space check only: the body's own end is what counts).
 */
function expectedSize(ctx: RequestContext, declared: number | undefined): number | undefined {
  if (declared !== undefined) return declared;
  const hint = /^\s*(\d{1,16})\s*$/.exec(ctx.header('x-expected-entity-length') ?? '')?.[1];
  return hint === undefined ? undefined : Number(hint);
}

/**
 * From this size on, a PUT first asks the file system for the free space (one statfs(2)): copying a big file to a
 * disk too full for it then fails at once, before the body is sent (`Expect: 100-continue`) or written, instead
 * of after gigabytes. Smaller uploads, which fail fast anyway, skip the call.
 */
const SPACE_CHECK_FROM = 1024 * 1024;

/** PUT: 201 when created, 204 when replaced; 405 on a collection, 409 without a parent collection. */
export const put: MethodHandler = {
  write: true,
  async handle(ctx) {
    // RFC 9110 §14.4: a partial PUT must be refused rather than applied as a whole-file write.
    if (ctx.header('content-range') !== undefined) throw new DavError(400, 'DAV_ERR_PARTIAL_PUT', 'PUT with Content-Range is not supported; send the whole file');
    const mtime = requestedMtime(ctx);
    const checksums = parseOcChecksum(ctx.header('oc-checksum'));
    const target = await ctx.dav.storage.prepareWrite(ctx.path);
    const existing = target.existing;
    await checkIfHeader(ctx);
    const v = { etag: existing?.etag ?? null, lastModified: existing ? new Date(existing.mtimeMs) : null };
    if (evaluateConditionals('PUT', ctx.req.headers, v) !== 'proceed') throw preconditionFailed('If-Match / If-None-Match did not hold for the current file');
    checkLocks(ctx, ctx.path, { membership: !existing });
    const declared = ctx.req.headers['content-length'];
    const total = declared === undefined ? undefined : Number(declared);
    const size = expectedSize(ctx, total);
    ctx.dav.hints.transfer(ctx.header('user-agent'), size, ctx.path);
    if (size !== undefined && size > ctx.dav.limits.maxUploadBytes) {
      throw new DavError(413, 'DAV_ERR_TOO_LARGE', `the upload exceeds the limit of ${ctx.dav.limits.maxUploadBytes} bytes (option maxUploadBytes)`);
    }
    if (size !== undefined && size >= SPACE_CHECK_FROM) {
      // The whole new file is written before it replaces the old one, so the old one's size does not count.
      const { available } = await ctx.dav.storage.space(parentOf(ctx.path));
      if (size > available) {
        const n = (b: number) => b.toLocaleString('en-US');
        throw new DavError(507, 'DAV_ERR_INSUFFICIENT_STORAGE', `no space left for ${ctx.path} on the host: the upload is ${n(size)} bytes, ${n(available)} are free`);
      }
    }
    const transfer = new Transfer('PUT', ctx.path, 'in', size);
    ctx.dav.startTransfer(transfer);
    ctx.acceptBody();
    try {
      const { created, entry } = await target.commit(ctx.req, {
        maxBytes: ctx.dav.limits.maxUploadBytes,
        declaredLength: total,
        onBytes: (n) => {
          transfer.bytes += n;
        },
        // Conditions (davfs2 and Office send If-Match; "create only" is If-None-Match: *) must still hold once
        // the body is in: otherwise a host edit made during a long upload would be overwritten unseen.
        expect: conditional(ctx) ? { etag: existing?.etag ?? null } : undefined,
        mtime,
        checksums,
      });
      transfer.finish();
      ctx.invalidateEntry();
      const headers: Record<string, string> = { ETag: entry.etag };
      if (created) headers.Location = hrefOf(ctx.path, false);
      if (mtime !== undefined) headers['X-OC-MTime'] = 'accepted';
      send(ctx.res, created ? 201 : 204, headers);
    } catch (err) {
      transfer.finish(err as Error);
      throw err;
    }
  },
};
