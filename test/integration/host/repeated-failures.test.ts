import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { QemuSocketTransport, type TransportState } from '../../../src/host/index.js';
import type { Logger } from '../../../src/log.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitState } from '../../helpers/transport.js';

/** A logger that keeps the message of each warning and debug line. */
function levelLog(): { log: Logger; warn: string[]; debug: string[] } {
  const warn: string[] = [];
  const debug: string[] = [];
  const log: Logger = { error() {}, info() {}, warn: (_f, msg) => warn.push(msg ?? ''), debug: (_f, msg) => debug.push(msg ?? ''), child: () => log };
  return { log, warn, debug };
}

// A VM that stays off for days must not write a warning every 30 s: the first failure is news, the same one
// again is not, and after a link the next failure is news again.
test('a transport warns once for a failure that repeats, and again after it has linked', { timeout: 30_000 }, async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'webdav.sock');
  const { log, warn, debug } = levelLog();
  const tr = new QemuSocketTransport({ path, log, reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
  t.after(() => tr.close());
  const retries: TransportState[] = [];
  tr.on('state', (s: TransportState) => {
    if (s.state === 'retrying') retries.push(s);
  });
  tr.start();

  // No QEMU on the socket: four attempts, one warning, the same failure three more times at debug level.
  await waitState(tr, () => retries.length >= 4, 'four failed attempts');
  assert.deepEqual(retries.slice(0, 4).map((s) => s.repeated), [false, true, true, true]);
  assert.equal(warn.length, 1);
  assert.match(warn[0]!, /no QEMU listens on .*webdav\.sock \(ENOENT\)/);
  assert.ok(debug.filter((m) => m === warn[0]).length >= 3, 'the repeats are in the debug log');

  // QEMU starts: linked. Then it stops: that loss, and the failures after it, are news once more.
  const qemu = createServer();
  const conns: Socket[] = [];
  qemu.on('connection', (c: Socket) => conns.push(c));
  qemu.listen(path);
  await once(qemu, 'listening');
  await waitState(tr, (s) => s.state === 'linked', 'the link');
  retries.length = 0;
  qemu.close();
  for (const c of conns) c.destroy();
  await waitState(tr, () => retries.length >= 3, 'three failed attempts after the loss');
  assert.equal(retries[0]!.error && (retries[0]!.error as { code?: string }).code, 'HOST_ERR_CLOSED');
  assert.deepEqual(retries.slice(0, 3).map((s) => s.repeated), [false, false, true]);
  assert.equal(warn.length, 3, `the loss and the first failure after it are warned about: ${warn.join(' | ')}`);
});
