import { SpicedavError } from '../src/errors.js';

/**
 * A DAV precondition or postcondition element (RFC 4918 §16) sent in a `<D:error>` body, e.g.
 * `lock-token-submitted` with the hrefs of the locked resources.
 */
export interface DavCondition {
  /** Local name in the DAV: namespace. */
  name: string;
  /** Hrefs listed inside the element (already URL-encoded). */
  hrefs?: string[];
}

/**
 * The error every DAV handler throws on purpose. It carries the HTTP `status` so that exactly one place
 * (`respond.ts`) turns errors into responses, and a stable `code` (`DAV_ERR_*`) for callers and tests.
 */
export class DavError extends SpicedavError {
  /** The HTTP status this error is answered with. */
  readonly status: number;
  /** Optional RFC 4918 condition element for the `<D:error>` body. */
  readonly condition: DavCondition | undefined;
  /**
   * Seconds after which the same request may succeed, sent as `Retry-After` (RFC 9110 §10.2.3). Set only where
   * the condition passes by itself; a 503 that needs the host user (the root gone, an unwritable state folder)
   * has none, so that no client keeps retrying something only a person can fix.
   */
  readonly retryAfter: number | undefined;

  constructor(status: number, code: string, message: string, options?: { cause?: unknown; condition?: DavCondition; retryAfter?: number }) {
    super(code, message, options);
    this.status = status;
    this.condition = options?.condition;
    this.retryAfter = options?.retryAfter;
  }
}

/** 400: the request is malformed (bad path encoding, bad header, malformed XML). */
export const badRequest = (code: string, message: string, cause?: unknown): DavError =>
  new DavError(400, code, message, { cause });

/** 403: the server refuses (read-only share, symlink leading out, protected property...). */
export const forbidden = (message: string, condition?: DavCondition): DavError =>
  new DavError(403, 'DAV_ERR_FORBIDDEN', message, { condition });

/** 404: no resource is mapped to the URL. */
export const notFound = (path: string): DavError =>
  new DavError(404, 'DAV_ERR_NOT_FOUND', `nothing at ${path}; check the path (PROPFIND the parent to list it)`);

/** 409: an intermediate collection is missing (or is not a collection). */
export const conflict = (message: string): DavError => new DavError(409, 'DAV_ERR_CONFLICT', message);

/** 412: an If/If-Match/Overwrite precondition failed. */
export const preconditionFailed = (message: string): DavError =>
  new DavError(412, 'DAV_ERR_PRECONDITION_FAILED', message);

/** 423: the resource is locked and the request did not submit a lock token for it. */
export const locked = (hrefs: string[]): DavError =>
  new DavError(423, 'DAV_ERR_LOCKED', `locked: ${hrefs.join(', ')}; submit the lock token in an If header`, {
    condition: { name: 'lock-token-submitted', hrefs },
  });

/** Map a Node file-system error to the DAV status that describes it to a client. */
export function fsError(err: unknown, path: string): DavError {
  if (err instanceof DavError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return new DavError(404, 'DAV_ERR_NOT_FOUND', `nothing at ${path}`, { cause: err });
    case 'ENOTDIR':
      return new DavError(409, 'DAV_ERR_CONFLICT', `a parent of ${path} is not a collection`, { cause: err });
    case 'EEXIST':
    case 'ENOTEMPTY':
      return new DavError(409, 'DAV_ERR_CONFLICT', `${path} already exists`, { cause: err });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new DavError(403, 'DAV_ERR_FORBIDDEN', `the host refuses access to ${path} (${code}); check its permissions`, { cause: err });
    case 'ENOSPC':
    case 'EDQUOT':
      return new DavError(507, 'DAV_ERR_INSUFFICIENT_STORAGE', `no space left for ${path} on the host`, { cause: err });
    case 'EMFILE':
    case 'ENFILE':
      // Passing: open files are given back as transfers end, so a client's retry (503 says try again) succeeds.
      return new DavError(503, 'DAV_ERR_TOO_MANY_FILES', `the host has too many files open to open ${path} (${code}); try again, or raise the limit (ulimit -n)`, { cause: err, retryAfter: 1 });
    case 'ENAMETOOLONG':
      return new DavError(414, 'DAV_ERR_NAME_TOO_LONG', `a name in ${path} is too long for the host file system`, { cause: err });
    case 'EISDIR':
      return new DavError(405, 'DAV_ERR_IS_COLLECTION', `${path} is a collection`, { cause: err });
    case 'ELOOP':
      return new DavError(403, 'DAV_ERR_SYMLINK', `${path} goes through a symbolic link the share does not follow`, { cause: err });
    default:
      return new DavError(500, 'DAV_ERR_IO', `I/O error on ${path}: ${(err as Error | undefined)?.message ?? String(err)}`, { cause: err });
  }
}
