/**
 * DavServer over handleConnection with an in-memory duplex (what a SPICE mux channel looks like to it):
 * several requests on one connection, a body bigger than the pipe's buffer in both directions, and the
 * connection staying open while idle (no keep-alive timeout on mux connections).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { DavServer, Transfer } from '../../../dav/index.js';
import { duplexPair } from '../../helpers/duplex-pair.js';
import { request } from './harness.js';

async function setUp(t: test.TestContext) {
  const base = await mkdtemp(join(tmpdir(), 'spicedav-duplex-'));
  await mkdir(join(base, 'share'));
  const server = new DavServer({ root: join(base, 'share'), stateDir: false });
  t.after(async () => {
    await server.close();
    await rm(base, { recursive: true, force: true });
  });
  const [client, serverSide] = duplexPair(16 * 1024);
  server.handleConnection(serverSide);
  // The HTTP client treats its connection as a net.Socket; these socket-only knobs mean nothing in memory.
  const noop = function (this: Duplex) {
    return this;
  };
  Object.assign(client, { setTimeout: noop, setKeepAlive: noop, setNoDelay: noop, ref: noop, unref: noop });
  // One connection for every request: an agent that always hands out the same duplex.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  (agent as unknown as { createConnection: () => Duplex }).createConnection = () => client;
  const req = (m: string, p: string, o: Parameters<typeof request>[3] = {}) => request(0, m, p, { ...o, agent });
  return { server, root: join(base, 'share'), req, client };
}

test('requests over one in-memory duplex: PUT, GET, PROPFIND, keep-alive', async (t) => {
  const { req, root, client } = await setUp(t);
  let closed = false;
  client.on('close', () => (closed = true));
  const big = Buffer.alloc(1024 * 1024 + 3, 7);
  assert.equal((await req('PUT', '/big.bin', { body: big })).status, 201);
  assert.ok((await readFile(join(root, 'big.bin'))).equals(big));
  const g = await req('GET', '/big.bin');
  assert.equal(g.status, 200);
  assert.ok(g.raw.equals(big));
  assert.equal((await req('MKCOL', '/d/')).status, 201);
  const p = await req('PROPFIND', '/', { headers: { depth: '1' } });
  assert.equal(p.status, 207);
  assert.ok(p.body.includes('/big.bin') && p.body.includes('/d/'));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(closed, false, 'an idle mux connection is not closed by the server');
  assert.equal((await req('OPTIONS', '/')).status, 200, 'the same connection still serves');
});

test("'transfer' events report GET and PUT bodies with live byte counts", async (t) => {
  const { server, req } = await setUp(t);
  const seen: { method: string; direction: string; total?: number; bytes: number; err?: Error }[] = [];
  server.on('transfer', (tr: Transfer) => tr.on('end', (err?: Error) => seen.push({ method: tr.method, direction: tr.direction, total: tr.total, bytes: tr.bytes, err })));
  const body = Buffer.alloc(200_000, 1);
  await req('PUT', '/x', { body });
  await req('GET', '/x');
  await req('GET', '/x', { headers: { range: 'bytes=0-9' } });
  // The client can see the end of a body a moment before the server's pipeline settles.
  for (let i = 0; i < 100 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(seen, [
    { method: 'PUT', direction: 'in', total: 200_000, bytes: 200_000, err: undefined },
    { method: 'GET', direction: 'out', total: 200_000, bytes: 200_000, err: undefined },
    { method: 'GET', direction: 'out', total: 10, bytes: 10, err: undefined },
  ]);
});
