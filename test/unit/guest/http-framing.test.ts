import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HttpExchangeTracker } from '../../../src/guest/http-framing.js';
import type { CloseMeaning } from '../../../src/guest/http-framing.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** The meaning after `requests` went one way and `responses` came back. */
function meaningAfter(requests: string, responses: string): CloseMeaning {
  const tracker = new HttpExchangeTracker();
  tracker.request(b(requests));
  tracker.response(b(responses));
  return tracker.closeMeaning();
}

test('between responses is idle; inside a framed body is a cut; inside a body that runs to the close, its end', () => {
  const get = 'GET /a HTTP/1.1\r\nHost: g\r\n\r\n';
  assert.equal(meaningAfter('', ''), 'idle');
  assert.equal(meaningAfter(get, ''), 'idle', 'a request with no answer yet is not a cut response');
  assert.equal(meaningAfter(get, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'), 'idle');
  assert.equal(meaningAfter(get, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel'), 'truncated');
  assert.equal(meaningAfter(get, 'HTTP/1.1 200 OK\r\nContent-Len'), 'truncated', 'a head cut in the middle');
  assert.equal(meaningAfter(get, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'), 'truncated');
  assert.equal(meaningAfter(get, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'), 'idle');
  assert.equal(meaningAfter(get, 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhel'), 'ends-response');
  assert.equal(meaningAfter(get, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx'), 'ends-response', 'not chunked last: runs to the close');
  assert.equal(meaningAfter(get, 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello'), 'idle', 'a list of equal lengths is one length');
});

test('what has no body by its request or status is whole at the end of its head', () => {
  assert.equal(meaningAfter('HEAD /a HTTP/1.1\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n'), 'idle');
  assert.equal(meaningAfter('DELETE /a HTTP/1.1\r\n\r\n', 'HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n'), 'idle');
  assert.equal(meaningAfter('GET /a HTTP/1.1\r\n\r\n', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n'), 'idle');
  // Pipelined: HEAD then GET. The second response's length counts, the first's does not.
  const two = 'HEAD /a HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\n\r\n';
  const head = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n';
  assert.equal(meaningAfter(two, head + head + 'ab'), 'truncated');
  assert.equal(meaningAfter(two, head + head + 'abc'), 'idle');
  // An interim 100 answers no request: the final response after it is still the PUT's.
  const put = 'PUT /a HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\ndata';
  assert.equal(meaningAfter(put, 'HTTP/1.1 100 Continue\r\n\r\n'), 'idle');
  assert.equal(meaningAfter(put + 'HEAD /a HTTP/1.1\r\n\r\n', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok' + head), 'idle');
  // A response nobody asked for (a timeout before any request) is framed as a GET's.
  assert.equal(meaningAfter('', 'HTTP/1.1 408 Request Timeout\r\nContent-Length: 3\r\n\r\nab'), 'truncated');
});

test('after a response that said the connection ends, the close is the announced one', () => {
  const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  const get11 = 'GET /a HTTP/1.1\r\n\r\n';
  assert.equal(meaningAfter(get11, ok), 'idle');
  assert.equal(meaningAfter(get11, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive, Close\r\n\r\nok'), 'announced');
  assert.equal(meaningAfter(get11, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\no'), 'truncated', 'not before its end');
  assert.equal(meaningAfter('GET /a HTTP/1.1\r\nConnection: close\r\n\r\n', ok), 'announced', 'the client asked for it');
  // HTTP/1.0 persists only when asked to, on both sides; a target that looks like a version does not count.
  assert.equal(meaningAfter('GET /a HTTP/1.0\r\n\r\n', ok), 'announced');
  assert.equal(meaningAfter(get11, 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'), 'announced');
  assert.equal(meaningAfter('GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok'), 'idle');
  assert.equal(meaningAfter('GET /HTTP/1.0 HTTP/1.1\r\n\r\n', ok), 'idle');
  // An interim answer says nothing about the connection; the next final one decides afresh.
  assert.equal(meaningAfter('GET /a HTTP/1.1\r\nConnection: close\r\n\r\n' + get11, ok + 'HTTP/1.1 100 Continue\r\n\r\n'), 'announced');
  assert.equal(meaningAfter('GET /a HTTP/1.1\r\nConnection: close\r\n\r\n' + get11, ok + ok), 'idle');
});

test('request bodies are skipped by their framing, whatever bytes they hold', () => {
  const body = 'GET /x HTTP/1.1\r\n\r\n'; // looks like a request, but is a body
  const put = `PUT /a HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}HEAD /b HTTP/1.1\r\n\r\n`;
  const ok = 'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n';
  // Had the body been taken for a GET, the HEAD's answer would be read as a GET's, with 4 bytes due.
  assert.equal(meaningAfter(put, ok + 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n'), 'idle');
  const chunked = 'PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;name=v\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\n';
  assert.equal(meaningAfter(chunked, ok + 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n'), 'idle');
});

test('anything it cannot follow makes it say unknown, for good', () => {
  const get = 'GET /a HTTP/1.1\r\n\r\n';
  const cut = 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab';
  assert.equal(meaningAfter(get, 'hello'), 'unknown', 'a response that is not HTTP');
  assert.equal(meaningAfter('SEND 5\n', cut), 'unknown', 'a request that is not HTTP');
  assert.equal(meaningAfter(get, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n' + cut), 'unknown');
  assert.equal(meaningAfter('CONNECT h:1 HTTP/1.1\r\n\r\n', cut), 'unknown');
  assert.equal(meaningAfter(get, 'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nab'), 'unknown', 'conflicting lengths');
  assert.equal(meaningAfter(get, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), 'unknown', 'a bad chunk size');
  assert.equal(meaningAfter(get, `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}`), 'unknown', 'a head over the bound');
  assert.equal(meaningAfter('PUT /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', cut), 'unknown', 'a request body with no length');
  assert.equal(meaningAfter(get, 'HTT'), 'unknown', 'too little to tell HTTP from anything else');
  assert.equal(meaningAfter(get, 'HTTP/'), 'truncated');
});

// --- a model of exchanges, serialized, fed in arbitrary pieces ---------------------------------------------

interface Exchange {
  method: 'GET' | 'HEAD' | 'PUT' | 'PROPFIND' | 'DELETE';
  requestBody: Uint8Array;
  requestChunked: boolean;
  interim: boolean;
  status: 200 | 201 | 204 | 207 | 304 | 404;
  body: Uint8Array;
  chunked: boolean;
}

/** A body in chunks of random sizes, with an extension on each and a trailer. */
function chunk(body: Uint8Array, cuts: number[]): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts.map((c) => c % (body.length + 1)).sort((x, y) => x - y), body.length]) {
    if (cut <= at) continue;
    parts.push(b(`${(cut - at).toString(16)};n=1\r\n`), Buffer.from(body.subarray(at, cut)), b('\r\n'));
    at = cut;
  }
  parts.push(b('0\r\nX-Trailer: t\r\n\r\n'));
  return Buffer.concat(parts);
}

interface Wire {
  requests: Buffer;
  responses: Buffer;
  /** Each response message (interim ones included): where it starts, where its head ends, where it ends. */
  messages: { start: number; headEnd: number; end: number; untilClose: boolean }[];
}

function serialize(exchanges: Exchange[], lastUntilClose: boolean, cuts: number[]): Wire {
  const requests: Buffer[] = [];
  const responses: Buffer[] = [];
  const messages: Wire['messages'] = [];
  let at = 0;
  const respond = (head: string, body: Buffer, untilClose: boolean): void => {
    const h = b(head);
    messages.push({ start: at, headEnd: at + h.length, end: at + h.length + body.length, untilClose });
    responses.push(h, body);
    at += h.length + body.length;
  };
  exchanges.forEach((x, i) => {
    const hasBody = x.requestBody.length > 0;
    const framing = !hasBody ? '' : x.requestChunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${x.requestBody.length}\r\n`;
    requests.push(b(`${x.method} /f${i} HTTP/1.1\r\nHost: guest\r\n${framing}\r\n`));
    if (hasBody) requests.push(x.requestChunked ? chunk(x.requestBody, cuts) : Buffer.from(x.requestBody));
    if (x.interim) respond('HTTP/1.1 100 Continue\r\n\r\n', Buffer.alloc(0), false);
    const bodyless = x.method === 'HEAD' || x.status === 204 || x.status === 304;
    const untilClose = lastUntilClose && i === exchanges.length - 1 && !bodyless;
    const length = untilClose ? 'Connection: close\r\n' : x.chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${x.body.length}\r\n`;
    const body = bodyless ? Buffer.alloc(0) : x.chunked && !untilClose ? chunk(x.body, cuts) : Buffer.from(x.body);
    respond(`HTTP/1.1 ${x.status} S\r\nDate: now\r\n${length}\r\n`, body, untilClose);
  });
  return { requests: Buffer.concat(requests), responses: Buffer.concat(responses), messages };
}

/** What a close after `k` response bytes means, by the model. */
function expected(wire: Wire, k: number): CloseMeaning {
  const m = wire.messages.find((x) => (x.untilClose ? k > x.start : k > x.start && k < x.end));
  if (m === undefined) return 'idle';
  if (m.untilClose && k >= m.headEnd) return 'ends-response';
  // 'HTTP' and less cannot be told from another protocol yet.
  return k - m.start < 5 ? 'unknown' : 'truncated';
}

const exchange: fc.Arbitrary<Exchange> = fc.record({
  method: fc.constantFrom('GET', 'HEAD', 'PUT', 'PROPFIND', 'DELETE'),
  requestBody: fc.uint8Array({ maxLength: 200 }),
  requestChunked: fc.boolean(),
  interim: fc.boolean(),
  status: fc.constantFrom(200, 201, 204, 207, 304, 404),
  // Bodies full of CR, LF and digits, which must be counted, never parsed.
  body: fc.uint8Array({ maxLength: 300 }).map((a) => a.map((v) => [0x0d, 0x0a, 0x30, 0x3a, v][v % 5] as number)),
  chunked: fc.boolean(),
});

test('model: at every response byte the meaning matches, requests fed in arbitrary pieces', () => {
  fc.assert(
    fc.property(
      fc.array(exchange, { minLength: 1, maxLength: 6 }),
      fc.boolean(),
      fc.array(fc.nat(), { maxLength: 4 }),
      fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 8 }),
      (exchanges, lastUntilClose, cuts, sizes) => {
        const wire = serialize(exchanges, lastUntilClose, cuts);
        const tracker = new HttpExchangeTracker();
        for (let at = 0, i = 0; at < wire.requests.length; i++) {
          const n = sizes[i % sizes.length] as number;
          tracker.request(wire.requests.subarray(at, at + n));
          at += n;
        }
        assert.equal(tracker.closeMeaning(), 'idle');
        for (let k = 1; k <= wire.responses.length; k++) {
          tracker.response(wire.responses.subarray(k - 1, k));
          const want = expected(wire, k);
          if (tracker.closeMeaning() !== want) assert.fail(`after ${k} of ${wire.responses.length} response bytes: ${tracker.closeMeaning()}, want ${want}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('model: responses fed in arbitrary pieces reach the same state as byte by byte', () => {
  fc.assert(
    fc.property(fc.array(exchange, { minLength: 1, maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1 }), (exchanges, sizes) => {
      const wire = serialize(exchanges, false, [7, 50]);
      const tracker = new HttpExchangeTracker();
      tracker.request(wire.requests);
      let at = 0;
      for (let i = 0; at < wire.responses.length; i++) {
        const n = sizes[i % sizes.length] as number;
        tracker.response(wire.responses.subarray(at, at + n));
        at = Math.min(at + n, wire.responses.length);
        assert.equal(tracker.closeMeaning(), expected(wire, at), `after ${at} bytes`);
      }
    }),
    { numRuns: 300 },
  );
});
