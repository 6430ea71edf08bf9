import test from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { GuestDisconnectEvent } from '../../../src/guest/proxy.js';
import { rawHost, readBytes, readToEnd, tcp, within } from './helpers.js';
import type { Wire } from './helpers.js';

// What a size-0 frame from the host does to the local connection depends on where the HTTP exchange stands:
// between responses the connection stays (spice-webdavd does so, and spice-gtk closes after every response);
// in the middle of a response the rest will never come, so the proxy closes it after what did come.

/** `payload` as frames of id 1 (at most 65535 bytes each); an empty payload is the size-0 close. */
function frames(payload: Buffer | string): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const out: Buffer[] = [];
  let at = 0;
  do {
    const part = data.subarray(at, at + 65535);
    const head = Buffer.alloc(10);
    head.writeBigInt64LE(1n, 0);
    head.writeUInt16LE(part.length, 8);
    out.push(head, part);
    at += part.length;
  } while (at < data.length);
  return Buffer.concat(out);
}

const CLOSE = frames('');

/** The client sends `request`; the test waits until the host has it (all on id 1). */
async function send(client: Socket, wire: Wire, request: string): Promise<void> {
  client.write(request);
  assert.equal((await wire.take(10 + request.length)).subarray(10).toString('latin1'), request);
}

/** Gives a wrongly closing proxy the time to show it, then says whether the client is still connected. */
async function stillOpen(client: Socket): Promise<boolean> {
  await new Promise((r) => setTimeout(r, 300));
  return !client.destroyed && client.readable;
}

test('a host close after a whole response keeps the connection; one in the middle of a body closes it after what came', async (t) => {
  const { proxy, port, wire, tcpPort } = await rawHost(t);
  const disconnects: GuestDisconnectEvent[] = [];
  proxy.on('disconnect', (e) => disconnects.push(e));
  const client = await tcp(tcpPort);

  await send(client, wire, 'GET /a HTTP/1.1\r\nHost: guest\r\n\r\n');
  const whole = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
  port.write(Buffer.concat([frames(whole), CLOSE]));
  assert.equal((await readBytes(client, whole.length)).toString(), whole);
  assert.equal(await stillOpen(client), true, 'kept after a whole response (spice-webdavd behaviour)');

  // The same connection, a new request; the host's server fails 5 bytes into a 10-byte body.
  await send(client, wire, 'GET /b HTTP/1.1\r\nHost: guest\r\n\r\n');
  const cut = 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello';
  const got = readToEnd(client, 3000);
  const disconnected = within(once(proxy, 'disconnect'), 3000, 'disconnect event');
  port.write(Buffer.concat([frames(cut), CLOSE]));
  assert.equal((await got).toString(), cut, 'the client got what came, then the close, not a wait for its timeout');
  // The id is given back to the host with a size-0 of the guest's own.
  assert.equal((await wire.take(10)).toString('hex'), '0100000000000000' + '0000');
  await disconnected;
  assert.deepEqual(
    disconnects.map((e) => e.reason),
    ['GUEST_ERR_RESPONSE_CUT'],
  );
  assert.equal(proxy.stats.hostCloses, 2);
  assert.equal(proxy.stats.hostClosesMidResponse, 1);
});

test('a HEAD answer and a 204 have no body: a host close after their heads keeps the connection', async (t) => {
  const { proxy, port, wire, tcpPort } = await rawHost(t);
  const client = await tcp(tcpPort);
  for (const [request, response] of [
    ['HEAD /a HTTP/1.1\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n'],
    ['DELETE /a HTTP/1.1\r\n\r\n', 'HTTP/1.1 204 No Content\r\n\r\n'],
  ] as const) {
    await send(client, wire, request);
    port.write(Buffer.concat([frames(response), CLOSE]));
    assert.equal((await readBytes(client, response.length)).toString(), response);
    assert.equal(await stillOpen(client), true, `kept after the ${request.split(' ')[0]} answer`);
  }
  assert.equal(proxy.stats.hostClosesMidResponse, 0);
});

// Both end the connection by HTTP's own rules, so the close is passed on as a normal end, not a cut.
for (const { what, request, response, midResponse } of [
  {
    what: 'a response that runs until the close is ended by the host close',
    request: 'GET /a HTTP/1.1\r\n\r\n',
    response: 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it',
    midResponse: 1,
  },
  {
    // An HTTP/1.0 client that reads to the end of the connection, like `printf 'GET / HTTP/1.0\r\n\r\n' | nc`.
    what: 'a host close after a response that announced it closes the local connection too (HTTP/1.0, nc-style clients)',
    request: 'GET /a HTTP/1.0\r\n\r\n',
    response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello',
    midResponse: 0,
  },
]) {
  test(what, async (t) => {
    const { proxy, port, wire, tcpPort } = await rawHost(t);
    const disconnects: GuestDisconnectEvent[] = [];
    proxy.on('disconnect', (e) => disconnects.push(e));
    const client = await tcp(tcpPort);
    await send(client, wire, request);
    const got = readToEnd(client, 3000);
    const disconnected = within(once(proxy, 'disconnect'), 3000, 'disconnect event');
    port.write(Buffer.concat([frames(response), CLOSE]));
    assert.equal((await got).toString(), response);
    await disconnected;
    assert.equal(disconnects[0]?.reason, undefined, 'a normal end, not a cut');
    assert.equal(proxy.stats.hostClosesMidResponse, midResponse);
  });
}

test('with the client not reading, the close is judged after the bytes that came before it', async (t) => {
  const { port, wire, tcpPort } = await rawHost(t);
  const client = await tcp(tcpPort);
  client.pause();
  await send(client, wire, 'GET /big HTTP/1.1\r\n\r\n');
  // 12 MiB: more than the socket and the kernel take, so most of it waits in the channel when the close comes.
  const body = Buffer.alloc(12 * 1024 * 1024, 0x61);
  const head = `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`;
  port.write(Buffer.concat([frames(Buffer.concat([Buffer.from(head), body])), CLOSE]));
  await new Promise((r) => setTimeout(r, 300));
  const got = await readBytes(client, head.length + body.length, 10_000);
  assert.equal(got.length, head.length + body.length);
  assert.equal(got.subarray(0, head.length).toString(), head);
  assert.equal(await stillOpen(client), true, 'the response was whole: kept');
  // Still usable: the next request goes out on the same id.
  await send(client, wire, 'GET /next HTTP/1.1\r\n\r\n');
});
