import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';

// Node cannot allocate a pty (no openpty/ioctl), so a few lines of Python hold the master and bridge it to their
// stdin/stdout. They keep the slave open too, so reading the master never sees EIO before the device opens it.
// The slave is left in cooked mode on purpose: the port device must switch it to raw itself.
const BRIDGE = `
import os, pty, select, sys
m, s = pty.openpty()
sys.stderr.write(os.ttyname(s) + "\\n"); sys.stderr.flush()
while True:
    r, _, _ = select.select([m, 0], [], [])
    if m in r:
        try:
            d = os.read(m, 65536)
        except OSError:
            break
        if not d:
            break
        os.write(1, d)
    if 0 in r:
        d = os.read(0, 65536)
        if not d:
            break
        os.write(m, d)
`;

/** A pty whose master side is the host: write to `toPort`, read `fromPort`; `hangUp()` closes the master. */
export interface PtyHost {
  /** The slave's path, e.g. /dev/pts/7: what the port device opens. */
  path: string;
  child: ChildProcessWithoutNullStreams;
  hangUp(): Promise<void>;
}

/** Start the bridge; resolves once the slave path is known. */
export async function startPtyHost(): Promise<PtyHost> {
  const child = spawn('python3', ['-c', BRIDGE], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  const path = await new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      err += d;
      const line = err.split('\n')[0];
      if (err.includes('\n') && line?.startsWith('/dev/')) resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`pty bridge exited (${code}): ${err}`)));
  });
  return {
    path,
    child,
    async hangUp() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.stdin.end();
      await exited;
    },
  };
}
