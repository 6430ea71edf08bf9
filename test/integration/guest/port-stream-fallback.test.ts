import test from 'node:test';
import assert from 'node:assert/strict';
import { VirtioPortDevice } from '../../../src/guest/virtio-port-device.js';
import { FdPortStream } from '../../../src/guest/fd-port-stream.js';
import { hasCode } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { requireTool } from '../../helpers/tools.js';
import { startPtyHost } from './pty-host.js';
import { readBytes } from './helpers.js';

// A future Node without process.binding('pipe_wrap'): this file runs in its own process, so removing it here
// before the first port opens is what such a Node looks like to the device.
(process as unknown as { binding: (name: string) => unknown }).binding = (name: string) => {
  throw new Error(`No such module: ${name}`);
};

test('virtio device without the pipe_wrap binding: auto falls back to thread-pool reads (logged), poll is refused', async (t) => {
  if (!requireTool(t, 'python3') || !requireTool(t, 'stty', 'coreutils')) return;
  const host = await startPtyHost();
  t.after(() => host.child.kill());
  const debug: Array<{ obj: object; msg: string }> = [];
  const log = { ...silentLogger, debug: (obj: object, msg?: string) => debug.push({ obj, msg: msg ?? '' }), child: () => log };
  const port = await new VirtioPortDevice({ path: host.path, log }).open(AbortSignal.timeout(5000));
  assert.ok(port instanceof FdPortStream, 'fallback stream');
  const why = debug.find((d) => d.msg === 'port stream: thread-pool reads (epoll unavailable)');
  assert.match(String((why?.obj as { why?: string } | undefined)?.why), /No such module: pipe_wrap/);
  host.child.stdin.write('ping');
  assert.equal((await readBytes(port, 4)).toString(), 'ping');
  port.destroy();

  await assert.rejects(new VirtioPortDevice({ path: host.path, stream: 'poll' }).open(AbortSignal.timeout(5000)),
    (e) => hasCode(e, 'GUEST_ERR_DEVICE_OPEN'));
});
