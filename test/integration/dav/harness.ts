/**
 * Shared set-up for the DAV integration tests: a DavServer on a temporary folder (port 0, state outside the
 * share), a small HTTP client that returns status/headers/body, and a raw client that sends bytes exactly as
 * written (no URL normalisation), for hostile requests.
 */
import http from 'node:http';
import { once } from 'node:events';
import net from 'node:net';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { DavServer, type DavServerOptions } from '../../../dav/index.js';

/** A response as the tests look at it. */
export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  raw: Buffer;
}

/** Options of a request. */
export interface RequestOptions {
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  agent?: http.Agent | false;
}

/** A response read to its end. */
export function readReply(res: http.IncomingMessage): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const raw = Buffer.concat(chunks);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: raw.toString('utf8'), raw });
    });
    res.on('error', reject);
  });
}

/** Send one request; every wait is bounded (10 s). */
export function request(port: number, method: string, path: string, o: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...o.headers };
    if (o.body !== undefined && headers['content-length'] === undefined) headers['content-length'] = Buffer.byteLength(o.body);
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: o.agent ?? false }, (res) => {
      readReply(res).then((reply) => {
        clearTimeout(timer);
        resolve(reply);
      }, reject);
    });
    // A timer rather than the socket timeout option: in-memory duplex sockets have no setTimeout.
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)), 10_000);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(o.body);
  });
}

/** Send raw bytes on a fresh connection and collect what comes back until the server closes or 3 s pass. */
export function rawRequest(port: number, text: string | Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      const out = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0), text: out });
    };
    const timer = setTimeout(finish, 3000);
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      // One response is enough: stop when its body (Content-Length) is complete.
      const all = Buffer.concat(chunks).toString('latin1');
      const head = all.indexOf('\r\n\r\n');
      const len = /content-length: *(\d+)/i.exec(all.slice(0, head));
      if (head >= 0 && len && all.length - head - 4 >= Number(len[1])) finish();
    });
    sock.on('end', finish);
    sock.on('error', (err) => (chunks.length ? finish() : reject(err)));
    sock.write(text);
  });
}

/** A running server over a fresh temporary folder. */
export interface Harness {
  server: DavServer;
  /** The shared folder. */
  root: string;
  /** A folder beside the share (outside it), for canaries and the state directory. */
  outside: string;
  port: number;
  req(method: string, path: string, o?: RequestOptions): Promise<Reply>;
}

/** Start a DavServer for one test; it is closed when the test ends. */
export async function startServer(t: TestContext, options: Partial<DavServerOptions> = {}): Promise<Harness> {
  // One after-hook, server first: the folder must outlive the server that serves it.
  const base = await mkdtemp(join(tmpdir(), 'spicedav-dav-'));
  const root = join(base, 'share');
  const outside = join(base, 'outside');
  await mkdir(root);
  await mkdir(outside);
  const server = new DavServer({ root, stateDir: join(outside, 'state'), ...options });
  t.after(async () => {
    await server.close();
    await rm(base, { recursive: true, force: true });
  });
  const { port } = await server.listen({ port: 0 });
  return { server, root, outside, port, req: (m, p, o) => request(port, m, p, o) };
}

/** A PROPFIND body asking for named DAV: properties. */
export function propfindBody(...names: string[]): string {
  return `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>${names.map((n) => `<D:${n}/>`).join('')}</D:prop></D:propfind>`;
}

/** Extract the text of every `<D:name>` element from an XML string (enough for assertions on our own output). */
export function texts(xml: string, name: string): string[] {
  return [...xml.matchAll(new RegExp(`<D:${name}>([^<]*)</D:${name}>`, 'g'))].map((m) => m[1] ?? '');
}

/** An upload in progress: the first half of its body is sent, the rest when `finish()` is called. */
export interface PausedPut {
  /** Send the rest; resolves with the response. */
  finish(): Promise<Reply>;
  /** Cut the upload (for a `finally`: a paused request would keep the server's close() waiting). */
  abort(): void;
}

/** Start a PUT of `body` and stop half-way: a long upload, during which a test changes things. */
export function pausedPut(port: number, path: string, body: Buffer, headers: Record<string, string> = {}): PausedPut {
  const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path, headers: { ...headers, 'content-length': body.length }, agent: false });
  const half = body.length >> 1;
  const response = new Promise<Reply>((resolve, reject) => {
    req.on('response', (res) => readReply(res).then(resolve, reject));
    req.on('error', reject);
  });
  response.catch(() => {});
  req.write(body.subarray(0, half));
  return {
    finish: () => {
      req.end(body.subarray(half));
      return response;
    },
    abort: () => req.destroy(),
  };
}

/**
 * A PUT whose size the server cannot know from a Content-Length (chunked), sent in 64 KiB writes, with extra
 * `headers` (X-Expected-Entity-Length). `headersOnly`: send no body, for an answer the headers alone must get.
 */
export function chunkedPut(port: number, path: string, body: Buffer, headers: Record<string, string> = {}, headersOnly = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path, headers, agent: false }, (res) => readReply(res).then(resolve, reject));
    req.on('error', reject);
    if (headersOnly) {
      req.flushHeaders();
      return;
    }
    (async () => {
      for (let off = 0; off < body.length; off += 65536) if (!req.write(body.subarray(off, off + 65536))) await once(req, 'drain');
      req.end();
    })().catch(() => {});
  });
}
