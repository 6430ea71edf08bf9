import test from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, Socket } from 'node:net';
import { closeSync, constants, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { VirtioPortDevice } from '../../../src/guest/virtio-port-device.js';
import { FdPortStream } from '../../../src/guest/fd-port-stream.js';
import { openPollPortStream, unpollableReason } from '../../../src/guest/poll-port-stream.js';
import { silentLogger } from '../../../src/log.js';
import { UnixSocketPortDevice } from '../../../src/guest/unix-socket-port-device.js';
import { portDeviceFromSpec } from '../../../src/guest/device-spec.js';
import { hasCode } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';
import { requireTool } from '../../helpers/tools.js';
import { startPtyHost } from './pty-host.js';
import { readBytes } from './helpers.js';

/** Read syscalls made by this process so far (all threads, the libuv pool included). */
function readSyscalls(): number {
  const m = /syscr: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return Number(m?.[1]);
}

test('virtio device: read() == 0 means no host, checked without busy-looping, abort ends the wait', async () => {
  // /dev/null is a character device whose read() returns 0 at once: exactly what a virtio port with no host
  // answers. The device must keep waiting, check about once a second, and burn no CPU meanwhile.
  const dev = new VirtioPortDevice({ path: '/dev/null' });
  const ac = new AbortController();
  const reads0 = readSyscalls();
  const cpu0 = process.cpuUsage();
  const opening = dev.open(ac.signal);
  let settled = false;
  opening.then(() => (settled = true), () => (settled = true));
  await new Promise((r) => setTimeout(r, 2600));
  assert.equal(settled, false, 'no host: open() must not resolve');
  const reads = readSyscalls() - reads0;
  const cpu = process.cpuUsage(cpu0);
  // Checks at 0, 0.1, 0.3, 0.7, 1.5, 2.5 s: 6; allow for reads Node itself makes.
  assert.ok(reads >= 4 && reads < 40, `expected a handful of checks, saw ${reads} read syscalls`);
  assert.ok(cpu.user + cpu.system < 300_000, `waiting used ${(cpu.user + cpu.system) / 1000} ms of CPU`);
  const t0 = Date.now();
  ac.abort();
  await assert.rejects(opening, { name: 'AbortError' });
  assert.ok(Date.now() - t0 < 200, 'abort ends the wait at once');
});

test('virtio device: a missing port is waited for; a regular file is refused with GUEST_ERR_BAD_DEVICE', async (t) => {
  const dir = await tempDir(t);
  const missing = new VirtioPortDevice({ path: join(dir, 'not-yet'), pollInterval: 50 });
  const ac = new AbortController();
  const opening = missing.open(ac.signal);
  setTimeout(() => ac.abort(), 300);
  await assert.rejects(opening, { name: 'AbortError' });

  const file = join(dir, 'file');
  writeFileSync(file, 'x');
  await assert.rejects(new VirtioPortDevice({ path: file }).open(new AbortController().signal), (e) => hasCode(e, 'GUEST_ERR_BAD_DEVICE'));
  await assert.rejects(portDeviceFromSpec(file), (e) => hasCode(e, 'GUEST_ERR_BAD_DEVICE'));
});

for (const stream of ['threadpool', 'poll'] as const) {
  test(`virtio device over a pty (${stream}): idle reads bounded, raw mode, 1 MiB+ byte-exact both ways, hang-up ends the stream`, async (t) => {
    if (!requireTool(t, 'python3') || !requireTool(t, 'stty', 'coreutils')) return;
    const host = await startPtyHost();
    t.after(() => host.child.kill());
    const port = await new VirtioPortDevice({ path: host.path, stream }).open(AbortSignal.timeout(5000));
    assert.ok(stream === 'poll' ? port instanceof Socket : port instanceof FdPortStream, `${stream} stream chosen`);

    // Attached but quiet: the thread-pool reader backs off to one read per 50 ms (maxIdleDelay), not a spin;
    // the epoll reader makes none at all until the pty says POLLIN.
    port.resume();
    // The count is the whole process's, and other work in it (a child's exit being reaped under load) may read in
    // one window; the stream's own reads come in every window, so the quietest of three is the stream's.
    await new Promise((r) => setTimeout(r, 200));
    const windows: number[] = [];
    for (let i = 0; i < 3; i++) {
      const reads0 = readSyscalls();
      await new Promise((r) => setTimeout(r, 1000));
      windows.push(readSyscalls() - reads0);
    }
    const idleReads = Math.min(...windows);
    if (stream === 'threadpool') assert.ok(idleReads >= 10 && idleReads < 60, `${windows.join(', ')} reads in 1 s windows of silence`);
    else assert.ok(idleReads < 10, `${windows.join(', ')} reads in 1 s windows of silence`);
    port.pause();

    // Every byte value, including the ones a cooked tty rewrites or acts on (\r \n ^C ^D ^S ^Q ^Z DEL).
    const all = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) all[i] = i;
    const toGuest = Buffer.concat([all, randomBytes(1200 * 1024), all]);
    const toHost = Buffer.concat([all, randomBytes(1200 * 1024), all]);
    const fromHost = readBytes(port, toGuest.length, 20_000);
    host.child.stdin.write(toGuest);
    const fromGuest = readBytes(host.child.stdout, toHost.length, 20_000);
    port.write(toHost);
    assert.ok((await fromHost).equals(toGuest), 'host → guest bytes arrive unchanged (no line discipline)');
    assert.ok((await fromGuest).equals(toHost), 'guest → host bytes arrive unchanged (no echo, no \\n → \\r\\n)');

    const closed = once(port, 'close');
    port.resume();
    await host.hangUp();
    await Promise.race([closed, new Promise((_, rej) => setTimeout(() => rej(new Error('stream did not end on hang-up')), 2000))]);
  });
}

test('virtio device: auto picks epoll for a pty; a device without poll (/dev/null) is refused, not handed to libuv', async (t) => {
  if (!requireTool(t, 'python3') || !requireTool(t, 'stty', 'coreutils')) return;
  const host = await startPtyHost();
  t.after(() => host.child.kill());
  const debug: string[] = [];
  const log = { ...silentLogger, debug: (_o: object, msg?: string) => debug.push(msg ?? ''), child: () => log };
  const port = await new VirtioPortDevice({ path: host.path, log }).open(AbortSignal.timeout(5000));
  assert.ok(port instanceof Socket, 'auto: epoll stream');
  assert.ok(debug.includes('port stream: epoll on the main thread'), debug.join('; '));
  port.destroy();

  // libuv aborts the process when epoll_ctl refuses an fd (EPERM for /dev/null), so it must never get one.
  const fd = openSync('/dev/null', constants.O_RDWR | constants.O_NONBLOCK);
  try {
    assert.match(unpollableReason(fd) ?? '', /neither a tty nor a virtio port/);
    assert.throws(() => openPollPortStream(fd), /cannot be polled/);
  } finally {
    closeSync(fd);
  }
});

test('thread-pool stream over /dev/null: read() == 0 is EOF, i.e. the host is gone, and the fd is released', async () => {
  const fd = openSync('/dev/null', constants.O_RDWR | constants.O_NONBLOCK);
  const port = new FdPortStream(fd);
  port.resume();
  await Promise.race([once(port, 'close'), new Promise((_, rej) => setTimeout(() => rej(new Error('no close on EOF')), 2000))]);
  assert.equal(port.readableEnded, true, 'ended (host gone), not failed');
  assert.throws(() => fstatSync(fd), { code: 'EBADF' });
});

test('unix socket device (connect): waits for a listener, then ends with the host', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'port.sock');
  const dev = new UnixSocketPortDevice({ path, pollInterval: 100 });
  const opening = dev.open(AbortSignal.timeout(5000));
  await new Promise((r) => setTimeout(r, 150));
  const server = createServer();
  t.after(() => server.close());
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  server.listen(path);
  const t0 = Date.now();
  const port = await opening;
  assert.ok(Date.now() - t0 < 1000, 'the listener is found within one poll interval');
  const [hostSide] = await accepted;
  port.write('ping');
  assert.equal((await readBytes(hostSide, 4)).toString(), 'ping');
  const ended = once(port, 'close');
  port.resume();
  hostSide.destroy();
  await ended;
});

test('unix socket device (listen): one host at a time, a host between sessions is kept, stale socket reused', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'port.sock');
  // A socket file nobody serves, as a crashed previous run leaves behind.
  const stale = createServer().listen(path);
  await once(stale, 'listening');
  await new Promise<void>((r) => stale.close(() => r()));

  const dev = new UnixSocketPortDevice({ path, listen: true });
  t.after(() => dev.close());
  const opening = dev.open(AbortSignal.timeout(5000));
  await new Promise((r) => setTimeout(r, 50));
  const host1 = connect(path);
  const port1: Duplex = await opening;
  await once(host1, 'connect');

  const host2 = connect(path);
  host2.on('error', () => {});
  await once(host2, 'close'); // refused: a session is running

  port1.resume();
  const ended = once(port1, 'close');
  host1.destroy();
  await ended;
  const host3 = connect(path); // arrives before the next open(): kept for it
  await once(host3, 'connect');
  const port3 = await dev.open(AbortSignal.timeout(2000));
  host3.write('hi');
  assert.equal((await readBytes(port3, 2)).toString(), 'hi');
  host3.destroy();
  await dev.close();
});

test('device spec: unix:, unix-listen:, a socket path, a device path', async (t) => {
  const dir = await tempDir(t);
  assert.ok((await portDeviceFromSpec('unix:/x')) instanceof UnixSocketPortDevice);
  assert.ok((await portDeviceFromSpec('unix-listen:/x')) instanceof UnixSocketPortDevice);
  assert.ok((await portDeviceFromSpec(join(dir, 'hot-plugged-later'))) instanceof VirtioPortDevice);
  assert.ok((await portDeviceFromSpec('/dev/null')) instanceof VirtioPortDevice);
  const sock = join(dir, 's.sock');
  const server = createServer().listen(sock);
  await once(server, 'listening');
  t.after(() => server.close());
  assert.ok((await portDeviceFromSpec(sock)) instanceof UnixSocketPortDevice);
  await assert.rejects(portDeviceFromSpec(''), (e) => hasCode(e, 'GUEST_ERR_BAD_DEVICE'));
});
