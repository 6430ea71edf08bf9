/**
 * `listen` with authentication (Basic from htpasswd, Digest from htdigest) and with TLS, exercised with curl
 * (a real client) and node's https; connections handed to handleConnection never need credentials.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BasicAuth, DavError, DigestAuth, type Authenticator } from '../../../dav/index.js';
import { requireTool } from '../../helpers/tools.js';
import { startServer, request } from './harness.js';
import { warningLog } from '../../helpers/log.js';

function curl(args: string[]): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', ...args], (err, stdout) => {
      if (err && !stdout) return reject(err);
      const i = stdout.lastIndexOf('\n');
      resolve({ code: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) });
    });
  });
}

test('Basic auth from an htpasswd file (openssl-made apr1 hash) with curl', async (t) => {
  if (!requireTool(t, 'curl') || !requireTool(t, 'openssl')) return;
  const h = await startServer(t);
  const hash = execFileSync('openssl', ['passwd', '-apr1', 's3cret'], { encoding: 'utf8' }).trim();
  const file = join(h.outside, 'htpasswd');
  await writeFile(file, `alice:${hash}\n`);
  const auth = await BasicAuth.fromFile(file, 'test realm');
  const { port } = await h.server.listen({ port: 0, auth });
  const url = `http://127.0.0.1:${port}/`;
  const none = await curl(['-X', 'PROPFIND', '-H', 'Depth: 0', '-D', '-', url]);
  assert.equal(none.code, 401);
  assert.match(none.body, /WWW-Authenticate: Basic realm="test realm"/i);
  assert.equal((await curl(['-u', 'alice:wrong', url])).code, 401);
  const put = await curl(['-u', 'alice:s3cret', '-X', 'PUT', '--data-binary', 'hello', `${url}up.txt`]);
  assert.equal(put.code, 201);
  assert.equal(await readFile(join(h.root, 'up.txt'), 'utf8'), 'hello');
  assert.equal((await curl(['-u', 'alice:s3cret', '-X', 'PROPFIND', '-H', 'Depth: 1', url])).code, 207);
  assert.equal((await request(h.port, 'PROPFIND', '/', { headers: { depth: '0' } })).status, 207, 'the listener without auth is unaffected');
});

test('Digest auth from an htdigest file with curl --digest', async (t) => {
  if (!requireTool(t, 'curl')) return;
  const h = await startServer(t);
  const file = join(h.outside, 'htdigest');
  await writeFile(file, `bob:spicedav:${createHash('md5').update('bob:spicedav:pa55').digest('hex')}\n`);
  const auth = await DigestAuth.fromFile(file, 'spicedav');
  const { port } = await h.server.listen({ port: 0, auth });
  const url = `http://127.0.0.1:${port}/`;
  const none = await curl(['-D', '-', url]);
  assert.equal(none.code, 401);
  assert.match(none.body, /WWW-Authenticate: Digest realm="spicedav"/i);
  assert.equal((await curl(['--digest', '-u', 'bob:wrong', url])).code, 401);
  const put = await curl(['--digest', '-u', 'bob:pa55', '-X', 'PUT', '--data-binary', 'digest!', `${url}d.txt`]);
  assert.equal(put.code, 201);
  assert.equal(await readFile(join(h.root, 'd.txt'), 'utf8'), 'digest!');
  const list = await curl(['--digest', '-u', 'bob:pa55', '-X', 'PROPFIND', '-H', 'Depth: 1', url]);
  assert.equal(list.code, 207);
  assert.match(list.body, /d\.txt/);
  await assert.rejects(DigestAuth.fromFile(file, 'other realm'), /no user in realm/);
});

test('failed logins are logged with address, user and reason, once a minute each; challenges and stale nonces are not', async (t) => {
  const { log, warnings } = warningLog();
  const h = await startServer(t, { log });
  const sha = (password: string) => `{SHA}${createHash('sha1').update(password).digest('base64')}`;
  const basic = await h.server.listen({ port: 0, auth: new BasicAuth(new Map([['alice', sha('s3cret')]])) });
  const as = (credentials: string) => ({ headers: { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` } });
  assert.equal((await request(basic.port, 'GET', '/')).status, 401);
  assert.equal(warnings.length, 0, 'a request without credentials is the usual first step, not a failure');
  assert.equal((await request(basic.port, 'GET', '/', as('alice:wrong'))).status, 401);
  assert.equal((await request(basic.port, 'GET', '/', as('alice:wrong'))).status, 401);
  assert.equal(warnings.length, 1, 'the same failure again within a minute adds no line');
  assert.match(warnings[0] as string, /^login failed \{"address":"127\.0\.0\.1","user":"alice","reason":"wrong password"\}$/);
  assert.equal((await request(basic.port, 'GET', '/', as('mallory:x'))).status, 401);
  assert.equal((await request(basic.port, 'GET', '/', { headers: { authorization: 'Bearer abc' } })).status, 401);
  assert.equal((await request(basic.port, 'GET', '/', { headers: { authorization: 'Basic !!' } })).status, 401);
  assert.equal((await request(basic.port, 'GET', '/', as('alice:s3cret'))).status, 200);
  const reasons = warnings.slice(1).map((w) => (JSON.parse(w.slice(w.indexOf('{'))) as { reason: string }).reason);
  assert.deepEqual(reasons, ['unknown user', 'not Basic credentials', 'malformed Basic credentials']);

  let now = 1_000_000;
  const users = new Map([['bob', createHash('md5').update('bob:spicedav:pa55').digest('hex')]]);
  const digest = await h.server.listen({ port: 0, auth: new DigestAuth(users, { realm: 'spicedav', nonceLifetimeMs: 60_000, now: () => now }) });
  const challenge = String((await request(digest.port, 'GET', '/')).headers['www-authenticate']);
  const nonce = /nonce="([^"]+)"/.exec(challenge)?.[1] ?? '';
  let nc = 0;
  const answer = (password: string, n = nonce) => {
    const count = (++nc).toString(16).padStart(8, '0');
    const md5 = (x: string) => createHash('md5').update(x).digest('hex');
    const response = md5(`${md5(`bob:spicedav:${password}`)}:${n}:${count}:c0ffee:auth:${md5('GET:/')}`);
    return { headers: { authorization: `Digest username="bob", realm="spicedav", nonce="${n}", uri="/", qop=auth, nc=${count}, cnonce="c0ffee", response="${response}"` } };
  };
  const before = warnings.length;
  assert.equal((await request(digest.port, 'GET', '/', answer('pa55'))).status, 200);
  assert.equal((await request(digest.port, 'GET', '/', answer('guess'))).status, 401);
  assert.equal(warnings.length, before + 1);
  assert.match(warnings.at(-1) as string, /"user":"bob","reason":"wrong password"/);
  // A nonce from before a restart, and the right password for an expired nonce, are renewed by the client.
  assert.equal((await request(digest.port, 'GET', '/', answer('pa55', 'abc.def'))).status, 401);
  now += 120_000;
  const stale = await request(digest.port, 'GET', '/', answer('pa55'));
  assert.equal(stale.status, 401);
  assert.match(String(stale.headers['www-authenticate']), /stale=true/);
  assert.equal(warnings.length, before + 1, 'neither is logged as a failed login');
});

test('password guessing: after the free failures an address waits (429, Retry-After), known credentials still pass', async (t) => {
  let now = 5_000_000;
  const { log, warnings } = warningLog();
  const h = await startServer(t, { log, loginThrottle: { free: 3, now: () => now } });
  const sha = (password: string) => `{SHA}${createHash('sha1').update(password).digest('base64')}`;
  const auth = new BasicAuth(new Map([['alice', sha('s3cret')], ['bob', sha('b0b')]]));
  const { port } = await h.server.listen({ port: 0, auth });
  const as = (credentials: string, body?: string) => ({ headers: { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` }, ...(body ? { body } : {}) });
  assert.equal((await request(port, 'GET', '/', as('alice:s3cret'))).status, 200, 'alice logs in before the attack');
  for (const password of ['a', 'b', 'c']) assert.equal((await request(port, 'GET', '/', as(`bob:${password}`))).status, 401);
  assert.equal(warnings.filter((w) => w.startsWith('too many')).length, 0, 'the free failures start no wait');
  assert.equal((await request(port, 'GET', '/', as('bob:d'))).status, 401);
  assert.match(warnings.find((w) => w.startsWith('too many')) ?? '', /^too many failed logins.*\{"address":"127\.0\.0\.1","waitSeconds":1\}$/);
  // While the address waits, no new credentials are checked, not even right ones.
  const refused = await request(port, 'PUT', '/x.txt', as('bob:b0b', 'never written'));
  assert.equal(refused.status, 429);
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal(refused.headers.connection, 'close', 'the unread body is not taken for a next request');
  assert.match(refused.body, /too many failed logins/);
  assert.equal((await request(port, 'GET', '/', as('bob:e'))).status, 429);
  // What was checked before is answered as before: a logged-in user is not locked out by a guesser at their
  // address, and a client that keeps sending a saved wrong password is told it is wrong.
  assert.equal((await request(port, 'GET', '/', as('alice:s3cret'))).status, 200);
  assert.equal((await request(port, 'GET', '/', as('bob:a'))).status, 401);
  // Requests without credentials still get their challenge.
  assert.equal((await request(port, 'GET', '/')).status, 401);
  now += 1000;
  const put = await request(port, 'PUT', '/x.txt', as('bob:b0b', 'written'));
  assert.equal(put.status, 201, 'after the wait the right password is checked and accepted');
  assert.equal(await readFile(join(h.root, 'x.txt'), 'utf8'), 'written');
  assert.equal((await request(port, 'GET', '/', as('bob:f'))).status, 401);
  const next = await request(port, 'GET', '/', as('bob:g'));
  assert.equal(next.status, 429);
  assert.equal(next.headers['retry-after'], '2', 'each further failure doubles the wait');
  // `known` costs a hash of the header: logged-in clients at an address without failures are not asked it.
  const clean = await startServer(t);
  let asked = 0;
  const counting: Authenticator = { check: (req) => auth.check(req), challenges: (req) => auth.challenges(req), known: (req) => (asked++, auth.known(req)) };
  const counted = await clean.server.listen({ port: 0, auth: counting });
  for (let i = 0; i < 3; i++) assert.equal((await request(counted.port, 'GET', '/', as('alice:s3cret'))).status, 200);
  assert.equal(asked, 0);
  assert.equal((await request(counted.port, 'GET', '/', as('alice:typo'))).status, 401);
  assert.equal((await request(counted.port, 'GET', '/', as('alice:s3cret'))).status, 200);
  assert.equal(asked, 1, 'after a failure from the address, it is');
  const open = await startServer(t, { loginThrottle: false });
  const unthrottled = await open.server.listen({ port: 0, auth });
  for (let i = 0; i < 20; i++) assert.equal((await request(unthrottled.port, 'GET', '/', as(`bob:${i}`))).status, 401);
  assert.equal((await request(unthrottled.port, 'GET', '/', as('bob:b0b'))).status, 200, 'loginThrottle: false turns it off');
});

test('an authenticator that cannot answer gives a 5xx (with Retry-After when it says when), never a pass', async (t) => {
  const h = await startServer(t);
  const failing = (err: Error): Authenticator => ({ check: () => Promise.reject(err), challenges: () => ['Basic realm="x"'] });
  const busy = await h.server.listen({ port: 0, auth: failing(new DavError(503, 'DAV_ERR_AUTH_BUSY', 'too many checks', { retryAfter: 1 })) });
  const r = await request(busy.port, 'PUT', '/x.txt', { body: 'no' });
  assert.equal(r.status, 503);
  assert.equal(r.headers['retry-after'], '1');
  assert.equal(r.headers.connection, 'close', 'the unread body is not taken for a next request');
  const broken = await h.server.listen({ port: 0, auth: failing(new Error('the checker thread ended')) });
  const b = await request(broken.port, 'GET', '/');
  assert.equal(b.status, 500);
  assert.equal(b.headers['retry-after'], undefined);
  assert.doesNotMatch(b.body, /checker/, 'an internal error stays in the log');
});

test('TLS: listen with a certificate serves HTTPS (and only HTTPS on that port)', async (t) => {
  if (!requireTool(t, 'openssl')) return;
  const h = await startServer(t);
  const key = join(h.outside, 'key.pem');
  const cert = join(h.outside, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const certPem = await readFile(cert);
  const { port } = await h.server.listen({ port: 0, tls: { cert: certPem, key: await readFile(key) } });
  await writeFile(join(h.root, 'secret.txt'), 'over tls');
  const body = await new Promise<string>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/secret.txt', ca: certPem, agent: false }, (res) => {
      let s = '';
      res.on('data', (d: Buffer) => (s += d.toString()));
      res.on('end', () => resolve(s));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(body, 'over tls');
  await assert.rejects(request(port, 'GET', '/secret.txt'), 'plain HTTP to the TLS port fails');
});
