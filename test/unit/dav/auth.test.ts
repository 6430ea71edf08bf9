import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { md5crypt } from '../../../dav/auth/md5crypt.js';
import { BasicAuth, parseHtpasswd, verifyHtpasswd } from '../../../dav/auth/basic.js';
import { DigestAuth, parseDigestParams, parseHtdigest } from '../../../dav/auth/digest.js';
import { DavError } from '../../../dav/errors.js';
import { haveTool } from '../../helpers/tools.js';

const fakeReq = (headers: Record<string, string>, method = 'GET', url = '/'): IncomingMessage => ({ headers, method, url }) as unknown as IncomingMessage;
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

test('MD5 crypt matches known vectors ($apr1$ from htpasswd, $1$ from openssl)', () => {
  assert.equal(md5crypt('secret', '.KberYKL', '$apr1$'), '$apr1$.KberYKL$T388yNqd9oNLNCO9zm9Nx/');
  assert.equal(md5crypt('hello', 'abcdefgh', '$1$'), '$1$abcdefgh$rwnEbRiN0agqVgZBovWNQ/');
  assert.equal(md5crypt('', 'x', '$1$').startsWith('$1$x$'), true);
});

test('MD5 crypt agrees with openssl passwd on random passwords', (t) => {
  if (!haveTool('openssl')) return t.skip('openssl not installed');
  for (const pw of ['a', 'pässwörd', 'x'.repeat(40), 'with space', '\u{10000}']) {
    const salt = Math.random().toString(36).slice(2, 10);
    const want = execFileSync('openssl', ['passwd', '-apr1', '-salt', salt, pw], { encoding: 'utf8' }).trim();
    assert.equal(md5crypt(pw, salt, '$apr1$'), want, pw);
  }
});

test('htpasswd files: supported schemes verify, others are refused at load', () => {
  const users = parseHtpasswd('# comment\nalice:$apr1$.KberYKL$T388yNqd9oNLNCO9zm9Nx/\nbob:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n\n');
  assert.ok(verifyHtpasswd('secret', users.get('alice') ?? ''));
  assert.ok(!verifyHtpasswd('Secret', users.get('alice') ?? ''));
  assert.ok(verifyHtpasswd('pw', users.get('bob') ?? ''));
  assert.ok(!verifyHtpasswd('pw ', users.get('bob') ?? ''));
  assert.throws(() => parseHtpasswd('carl:$2y$05$I0VKy2OCworgw9/xE20BVeIHv4sCWjK73.KIw3HXQizzH0XgyIVwG'), (e: unknown) => e instanceof DavError && /carl/.test(e.message));
  assert.throws(() => parseHtpasswd('no-colon'), /not user:hash/);
});

test('BasicAuth accepts the right password only, and challenges with its realm', async () => {
  const auth = new BasicAuth(parseHtpasswd('alice:$apr1$.KberYKL$T388yNqd9oNLNCO9zm9Nx/'), 'Share "x"');
  const basic = (s: string) => fakeReq({ authorization: `Basic ${Buffer.from(s).toString('base64')}` });
  assert.equal(await auth.check(basic('alice:secret')), 'alice');
  assert.equal(await auth.check(basic('alice:secret')), 'alice', 'the second time comes from the verified cache');
  assert.equal(await auth.check(basic('alice:wrong')), null);
  assert.equal(await auth.check(basic('mallory:secret')), null);
  assert.equal(await auth.check(basic('alicesecret')), null);
  assert.equal(await auth.check(fakeReq({})), null);
  assert.equal(await auth.check(fakeReq({ authorization: 'Bearer x' })), null);
  assert.deepEqual(auth.challenges(fakeReq({})), [`Basic realm="Share 'x'", charset="UTF-8"`]);
});

function digestAnswer(challenge: string, user: string, realm: string, pass: string, method: string, uri: string, nc = '00000001') {
  const p = parseDigestParams(challenge) as Map<string, string>;
  const nonce = p.get('nonce') as string;
  const ha1 = md5(`${user}:${realm}:${pass}`);
  const response = md5(`${ha1}:${nonce}:${nc}:c0ffee:auth:${md5(`${method}:${uri}`)}`);
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", qop=auth, nc=${nc}, cnonce="c0ffee", response="${response}", algorithm=MD5`;
}

test('DigestAuth: a correct answer passes once per nonce count; wrong password, uri or replay fail; old nonces are stale', async () => {
  const clock = { now: 1_000_000 };
  const realm = 'dav';
  const auth = new DigestAuth(parseHtdigest(`alice:${realm}:${md5('alice:dav:pw')}\nbob:other:${md5('bob:other:x')}`, realm), { realm, nonceLifetimeMs: 1000, now: () => clock.now });
  const challenge = auth.challenges(fakeReq({}))[0] as string;
  assert.match(challenge, /^Digest realm="dav", qop="auth", algorithm=MD5, nonce="[^"]+", opaque="[0-9a-f]+"$/);
  const ok = fakeReq({ authorization: digestAnswer(challenge, 'alice', realm, 'pw', 'PROPFIND', '/a') }, 'PROPFIND', '/a');
  assert.equal(await auth.check(ok), 'alice');
  assert.equal(await auth.check(ok), null, 'the same nonce count twice is a replay');
  assert.equal(await auth.check(fakeReq({ authorization: digestAnswer(challenge, 'alice', realm, 'pw', 'PROPFIND', '/a', '00000002') }, 'PROPFIND', '/a')), 'alice');
  assert.equal(await auth.check(fakeReq({ authorization: digestAnswer(challenge, 'alice', realm, 'bad', 'GET', '/') })), null);
  assert.equal(await auth.check(fakeReq({ authorization: digestAnswer(challenge, 'alice', realm, 'pw', 'GET', '/other') }, 'GET', '/')), null);
  assert.equal(await auth.check(fakeReq({ authorization: digestAnswer(challenge, 'bob', 'other', 'x', 'GET', '/') })), null, 'another realm');
  const forged = challenge.replace(/nonce="([^".]+)\.[^"]+"/, 'nonce="$1.AAAA"');
  assert.equal(await auth.check(fakeReq({ authorization: digestAnswer(forged, 'alice', realm, 'pw', 'GET', '/') })), null);
  clock.now += 2000;
  const late = fakeReq({ authorization: digestAnswer(challenge, 'alice', realm, 'pw', 'GET', '/', '00000009') });
  assert.equal(await auth.check(late), null);
  assert.match(auth.challenges(late)[0] as string, /stale=true$/);
  assert.doesNotMatch(auth.challenges(fakeReq({}))[0] as string, /stale/);
});

test('Digest header parameters: quoted, escaped, bare', () => {
  const p = parseDigestParams('Digest username="a\\"b", nc=00000001, qop=auth, uri="/x,y"') as Map<string, string>;
  assert.equal(p.get('username'), 'a"b');
  assert.equal(p.get('nc'), '00000001');
  assert.equal(p.get('uri'), '/x,y');
  assert.equal(parseDigestParams('Basic abc'), null);
  assert.throws(() => parseHtdigest('alice:realm:nothex', 'realm'), /user:realm:md5/);
});
