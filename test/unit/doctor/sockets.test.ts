import test from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { once } from 'node:events';
import { parseProcNetTcp, localClientsOf, TCP_LISTEN, TCP_ESTABLISHED } from '../../../src/doctor/sockets.js';
import { renderReport, reportOk } from '../../../src/doctor/report.js';

// Lines as Linux 6.1 prints them (IPv4 listener on 127.0.0.1:5930, an established client, an IPv6 ::1 socket).
const TCP4 = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:172A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 40061 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:172A 01 00000000:00000000 00:00000000 00000000  1000        0 40999 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:2693 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 51234 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:2693 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 51235 1 0000000000000000 100 0 0 10 0
`;

test('parses /proc/net/tcp lines: addresses, ports, states and inodes', () => {
  const [listen, est] = parseProcNetTcp(TCP4);
  assert.deepEqual(listen, { localAddress: '127.0.0.1', localPort: 5930, remoteAddress: '0.0.0.0', remotePort: 0, state: TCP_LISTEN, inode: 40061 });
  assert.deepEqual(est, { localAddress: '127.0.0.1', localPort: 50000, remoteAddress: '127.0.0.1', remotePort: 5930, state: TCP_ESTABLISHED, inode: 40999 });
});

test('parses /proc/net/tcp6 lines including ::1 and v4-mapped addresses', () => {
  const [a, b] = parseProcNetTcp(TCP6);
  assert.equal(a!.localAddress, '::1');
  assert.equal(a!.localPort, 9875);
  assert.equal(b!.localAddress, '::ffff:127.0.0.1');
  assert.equal(b!.remotePort, 0xd431);
});

test('finds the local process connected to a port without connecting to it', async (t) => {
  const server = createServer((s) => s.on('error', () => {}));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  assert.deepEqual(await localClientsOf(port), []);
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  t.after(() => client.destroy());
  const owners = await localClientsOf(port);
  assert.equal(owners.length, 1);
  assert.equal(owners[0]!.pid, process.pid);
  assert.match(owners[0]!.command, /node/);
});

test('the report prints each check, indents fixes and counts problems', () => {
  const results = [
    { name: 'SPICE server', status: 'ok' as const, detail: 'reachable at 127.0.0.1:5930' },
    { name: 'webdav port', status: 'fail' as const, detail: 'the VM has no org.spice-space.webdav.0 port', fix: 'add:\n-device virtserialport,...' },
    { name: 'viewer', status: 'warn' as const, detail: 'remote-viewer (pid 7) is connected', fix: 'use --qemu-socket' },
  ];
  assert.equal(
    renderReport(results),
    '✔ SPICE server: reachable at 127.0.0.1:5930\n' +
      '✖ webdav port: the VM has no org.spice-space.webdav.0 port\n    add:\n    -device virtserialport,...\n' +
      '! viewer: remote-viewer (pid 7) is connected\n    use --qemu-socket\n' +
      '1 problem, 1 warning\n',
  );
  assert.equal(reportOk(results), false);
  assert.equal(reportOk(results.filter((r) => r.status !== 'fail')), true);
});
