let closed: Promise<void> | undefined;

/**
 * Resolves when a reader of spicedav's output has gone away: `spicedav --help | head -1`, `spicedav serve DIR |
 * grep -m1 http`, a closed terminal. The next write to that stdout or stderr then fails with EPIPE. A C program
 * dies there of SIGPIPE, silently; Node ignores that signal, and the EPIPE, unhandled, crashed with a stack
 * trace. Once this has been called, it is the end of the output instead: a short command finishes as usual, and
 * a service stops cleanly, as on SIGTERM (`runUntilSignal` waits for this too). Any other error on the two
 * streams (EIO, EBADF) stays as fatal as it was.
 */
export function outputClosed(): Promise<void> {
  closed ??= new Promise((resolve) => {
    for (const stream of [process.stdout, process.stderr]) {
      stream.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPIPE') throw err;
        resolve();
      });
    }
  });
  return closed;
}
