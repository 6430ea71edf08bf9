import test from 'node:test';
import assert from 'node:assert/strict';
import { openSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { createMemoryTransport } from '../../../src/host/index.js';
import { FdPortStream } from '../../../src/guest/fd-port-stream.js';
import { portCopiesWrites } from '../../../src/guest/upload-pump.js';

// The pump reuses a buffer once its frame's write called back. Which ports that is safe on decides both
// correctness (the in-memory transport must be excluded: it passes buffers on by reference) and the guest's
// upload speed in a VM (the real port streams must be included).

test('the port streams of a real guest copy what they are written: the pump may run', async () => {
  const socket = new Socket();
  assert.equal(portCopiesWrites(socket), true, 'a socket (unix-socket device; the poll-based virtio stream is one too)');
  socket.destroy();
  const fd = openSync('/dev/null', 'r+');
  const port = new FdPortStream(fd);
  assert.equal(portCopiesWrites(port), true, 'the thread-pool virtio stream');
  port.destroy(); // closes the fd
  await finished(port).catch(() => {});
});

test('in-memory Duplexes hand buffers on: the pump must not run over them', async () => {
  assert.equal(portCopiesWrites(new PassThrough()), false);
  const { transport, guestEnd } = createMemoryTransport();
  transport.start();
  const guestSide = await guestEnd.open(new AbortController().signal);
  try {
    assert.equal(portCopiesWrites(guestSide), false, 'the transport of `spicedav demo`');
  } finally {
    await transport.close();
  }
});
