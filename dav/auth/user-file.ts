/**
 * The user file of an authenticator (htpasswd, htdigest): read at start, and read again whenever it changes, so
 * that adding a user, changing a password or removing a user takes effect without a restart (Apache reads its
 * file on every request, and administrators rely on that to revoke access). chokidar does the watching: it follows
 * a file that is replaced by a rename (an editor saving), and waits until a write has finished before it reports it
 * (`htpasswd` rewrites the file in place from a temporary copy).
 */
import { readFile } from 'node:fs/promises';
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

/**
 * Reload `auth` whenever its file changes; when the returned promise resolves, a change made since `auth` first read
 * the file has been applied too. A file that cannot be used (half written, malformed, a hash scheme the server
 * cannot check) or that is removed leaves the users as they were, and the log says why: the server never falls
 * open, and a typo does not lock everyone out.
 */
export async function followUserFile(auth: FileAuthenticator, log: Logger): Promise<UserFileFollower> {
  const { watch } = await import('chokidar');
  const file = auth.file;
  const watcher = watch(file, {
    persistent: false,
    ignoreInitial: true,
    // A change is reported once the file's size has held still this long: not in the middle of a write.
    awaitWriteFinish: { stabilityThreshold: 150, pollInterval: 50 },
  });
  let queue = Promise.resolve();
  const reload = (changed = true) => {
    queue = queue.then(async () => {
      try {
        const users = await auth.reload();
        if (changed) log.info({ file, users }, 'user file changed; its users apply from now on');
      } catch (err) {
        log.warn({ file, err: (err as Error).message }, 'the changed user file cannot be used; the previous users stay');
      }
    });
  };
  watcher.on('add', () => reload());
  watcher.on('change', () => reload());
  watcher.on('unlink', () => log.warn({ file }, 'the user file was removed; the previous users stay until it is back'));
  watcher.on('error', (err) => log.warn({ file, err: (err as Error).message }, 'cannot watch the user file; changes to it need a restart'));
  await new Promise<void>((resolve) => watcher.once('ready', resolve));
  // The watch reports changes from `ready` on; one made since the authenticator first read the file (a user added
  // while the server started) would otherwise wait for the next change. Read once more, quietly.
  reload(false);
  await queue;
  return {
    async close() {
      await watcher.close();
      await queue;
    },
  };
}
