/**
 * The user file of an authenticator (htpasswd, htdigest): read at start, and read again whenever it changes, so
 * that adding a user, changing a password or removing a user takes effect without a restart (Apache reads its
 * file on every request, and administrators rely on that to revoke access).
 *
 * What counts is the file's own state, not the events that announce it. chokidar's events (it follows a file
 * replaced by a rename, and a file removed and made again) only say "look now"; every look compares the file's
 * identity, size and times with those of the copy in use, and reads it once they have held still for a moment
 * (`htpasswd` rewrites the file in place from a temporary copy: a read in between would see it half written). A
 * look also runs every few seconds without an event: a watch sees nothing of a change made on another machine
 * (NFS, SMB) or of a symbolic link on the way switched to another file (Kubernetes mounts its secrets so), and a
 * burst of events can be throttled away; the poll bounds how long any of these goes unseen.
 */
import { readFile, stat } from 'node:fs/promises';
import type { Logger } from '../../src/log.js';
import { DavError } from '../errors.js';
import type { FileAuthenticator } from './authenticator.js';

/** The text of a user file; `DAV_ERR_AUTH_FILE` naming it when it cannot be read. */
export async function readUserFile(path: string, kind: 'htpasswd' | 'htdigest'): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new DavError(500, 'DAV_ERR_AUTH_FILE', `cannot read the ${kind} file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Following a user file; `close()` stops it. */
export interface UserFileFollower {
  close(): Promise<void>;
}

/** Timings of `followUserFile`. */
export interface FollowOptions {
  /** How long the file must stay unchanged before it is read (ms). */
  settleMs?: number;
  /** How often the file is looked at when no event came (ms). */
  pollMs?: number;
}

/** What a look found: a signature (device, inode, size, modification and change times), or why there is none. */
type FileState = string;
const MISSING: FileState = 'missing';

async function stateOf(file: string): Promise<FileState> {
  try {
    const s = await stat(file, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Another failure (EACCES, EIO) is a state too: the read it leads to fails and says why.
    return code === 'ENOENT' || code === 'ENOTDIR' ? MISSING : `error:${code}`;
  }
}

/**
 * Reload `auth` whenever its file changes; when the returned promise resolves, a change made since `auth` first read
 * the file has been applied too. A file that cannot be used (half written, malformed, a hash scheme the server
 * cannot check) or that is removed leaves the users as they were, and the log says why: the server never falls
 * open, and a typo does not lock everyone out.
 */
export async function followUserFile(auth: FileAuthenticator, log: Logger, options: FollowOptions = {}): Promise<UserFileFollower> {
  const { settleMs = 150, pollMs = 2_000 } = options;
  const { watch } = await import('chokidar');
  const file = auth.file;
  /** The state of the file whose users are in use (or MISSING, once its removal was reported). */
  let applied: FileState;
  /** The state the previous look saw: a change is read once two looks a settle apart agree. */
  let seen: FileState | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  let queue = Promise.resolve();

  const apply = async (state: FileState, quiet: boolean) => {
    applied = state;
    if (state === MISSING) {
      log.warn({ file }, 'the user file was removed; the previous users stay until it is back');
      return;
    }
    try {
      const users = await auth.reload();
      if (!quiet) log.info({ file, users }, 'user file changed; its users apply from now on');
    } catch (err) {
      log.warn({ file, err: (err as Error).message }, 'the changed user file cannot be used; the previous users stay');
    }
  };
  const look = async () => {
    if (closed) return;
    const state = await stateOf(file);
    if (state === applied) {
      seen = null;
    } else if (state !== seen && state !== MISSING) {
      // Changed since the last look: it may still be being written. Look again after a settle.
      seen = state;
      schedule(settleMs);
    } else {
      seen = null;
      await apply(state, false);
    }
  };
  /** Look after `ms`; an earlier look still pending is replaced (events in a burst make one look). */
  const schedule = (ms: number) => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      // A look that failed must not stop the following ones: a rejected queue would skip every later look.
      queue = queue.then(look).catch((err: unknown) => log.warn({ file, err: (err as Error).message }, 'cannot look at the user file'));
    }, ms);
    timer.unref();
  };

  const watcher = watch(file, { persistent: false, ignoreInitial: true });
  watcher.on('all', () => schedule(settleMs));
  watcher.on('error', (err) => log.warn({ file, err: (err as Error).message }, `cannot watch the user file; changes to it are seen within ${pollMs / 1000} s`));
  await new Promise<void>((resolve) => watcher.once('ready', resolve));
  // The watch reports changes from `ready` on; one made since the authenticator first read the file (a user added
  // while the server started) would otherwise wait for the next change. Read once more, quietly. The state is
  // taken first, so a change during the read is one the next look sees.
  await apply(await stateOf(file), true);
  const poll = setInterval(() => {
    if (!timer) schedule(0);
  }, pollMs);
  poll.unref();
  return {
    async close() {
      closed = true;
      clearInterval(poll);
      if (timer) clearTimeout(timer);
      await watcher.close();
      await queue;
    },
  };
}
