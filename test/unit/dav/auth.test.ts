import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IncomingMessage } from 'node:http';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { md5crypt } from '../../../dav/auth/md5crypt.js';
import { parseShaCryptSetting, shaCrypt, type ShaCryptSetting } from '../../../dav/auth/sha-crypt.js';
import { BasicAuth, parseHtpasswd, verifyHtpasswd } from '../../../dav/auth/basic.js';
import { DigestAuth, parseDigestParams, parseHtdigest } from '../../../dav/auth/digest.js';
import { SlowHashChecker, slowHashes } from '../../../dav/auth/slow-hash.js';
import { followUserFile } from '../../../dav/auth/user-file.js';
import { LoginFailures } from '../../../dav/auth/login-failures.js';
import { DavError } from '../../../dav/errors.js';
import { haveTool, requireTool } from '../../helpers/tools.js';
import { tempDir } from '../../helpers/tmp.js';
import { warningLog } from '../../helpers/log.js';

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

test('SHA-crypt matches glibc crypt(3) vectors: default and given rounds, long salts and passwords, UTF-8', () => {
  // Made with glibc's crypt(3) (libxcrypt) through Python's crypt module.
  const vectors: [string, string][] = [
    ['Hello world!', '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5'],
    ['Hello world!', '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'],
    ['pässwörd', '$5$rounds=10000$saltstringsaltst$DhrNEPcQkZDZ6VvdYAHemPCfpSK.0kkrNtG/Y1wLlfD'],
    ['x'.repeat(100), '$6$rounds=1400$anotherlongsalts$BaMvyw440I21ozRaSVReppofjrlnjLm72zKf4/LMvD3AO8dSH.3nmJgq4q7zMhJWiFIPPy/0y4Uwap7YC1Uub0'],
    ['x'.repeat(100), '$5$saltstring$Oa4FAe3j12NEBjTMwR61FXUth0v2z1HlRVgHK3bteq/'],
    ['', '$5$rounds=1000$s$cdjvTno7yp4OJ1Yyxn95LrCQTyxHsv3TK6lXb48P4L1'],
    ['pässwörd', '$6$$yMPkfzGcFCffodHeXboZ4HGPGQiYmdKy1.x85l1lf44q/wjyBJ6/pGh7oocpx9.A0iIaD6/1nWIik8lDzE97s0'],
  ];
  for (const [pw, want] of vectors) assert.equal(shaCrypt(pw, parseShaCryptSetting(want) as ShaCryptSetting), want, want);
  // A salt is cut at 16 characters, as glibc does: the stored hash names the cut salt.
  const long = parseShaCryptSetting('$6$rounds=5000$toolongsaltstringXYZ') as ShaCryptSetting;
  assert.equal(shaCrypt('Hello world!', long), '$6$rounds=5000$toolongsaltstrin$iGlL7EUUfzNQx59x3ydJZ.zXPMUu1dOynSEl/vcNhLlas77qD0DzRswhhB6LdrXTz250at0syAfUXra.XrxAI1');
  assert.equal(parseShaCryptSetting('$apr1$x$y'), null);
});

test('SHA-crypt agrees with openssl passwd -5 and -6 on random passwords and salts', (t) => {
  if (!haveTool('openssl')) return t.skip('openssl not installed');
  for (const pw of ['a', 'pässwörd', 'y'.repeat(70), 'with space', '\u{10000}']) {
    for (const flag of ['-5', '-6']) {
      const salt = randomBytes(12).toString('base64').replace(/\+/g, '.').slice(0, 1 + randomInt(16));
      const want = execFileSync('openssl', ['passwd', flag, '-salt', salt, pw], { encoding: 'utf8' }).trim();
      assert.equal(shaCrypt(pw, parseShaCryptSetting(want) as ShaCryptSetting), want, `${flag} ${pw}`);
    }
  }
});

test('every scheme htpasswd writes but DES and plain text verifies the right password only', async (t) => {
  if (!requireTool(t, 'htpasswd', 'apache2-utils')) return;
  for (const flag of ['-m', '-B', '-2', '-5', '-s']) {
    const pw = `pw ${flag} ${randomBytes(6).toString('hex')} ü`;
    const line = execFileSync('htpasswd', ['-nbi', flag, 'alice'], { input: pw, encoding: 'utf8' }).trim();
    const hash = parseHtpasswd(line).get('alice') as string;
    assert.ok(await verifyHtpasswd(pw, hash), `${flag}: ${hash}`);
    assert.equal(await verifyHtpasswd(`${pw}!`, hash), false, `${flag}: a wrong password`);
  }
});

test('htpasswd files: a scheme this server cannot check or a damaged hash is refused at load, naming the user', async () => {
  const users = parseHtpasswd('# comment\nalice:$apr1$.KberYKL$T388yNqd9oNLNCO9zm9Nx/\nbob:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n\n');
  assert.ok(await verifyHtpasswd('secret', users.get('alice') ?? ''));
  assert.equal(await verifyHtpasswd('Secret', users.get('alice') ?? ''), false);
  assert.ok(await verifyHtpasswd('pw', users.get('bob') ?? ''));
  assert.equal(await verifyHtpasswd('pw ', users.get('bob') ?? ''), false);
  const refused = [
    'rQBf1ZW1KCR1w', // DES crypt (htpasswd -d)
    'plain', // htpasswd -p
    '$2y$05$I0VKy2OCworgw9/xE20BVeIHv4sCWjK73.KIw3HXQizzH0XgyIVw', // bcrypt, one character short
    '$2y$45$I0VKy2OCworgw9/xE20BVeIHv4sCWjK73.KIw3HXQizzH0XgyIVwG', // bcrypt with a cost beyond 31
    '$6$salt$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4', // SHA-512 crypt, cut
    '$apr1$.KberYKL$T388yNqd9oNLNCO9zm9Nx', // MD5, cut
  ];
  for (const hash of refused) {
    assert.throws(() => parseHtpasswd(`carl:${hash}`), (e: unknown) => e instanceof DavError && e.code === 'DAV_ERR_AUTH_FILE' && /carl/.test(e.message), hash);
  }
  assert.throws(() => parseHtpasswd('no-colon'), /not user:hash/);
});

test('bcrypt and SHA-crypt checks run off the event loop, which stays idle meanwhile', async () => {
  // Event-loop utilisation, not wall time: whatever else loads the machine, a check on this thread keeps the
  // loop busy for its whole length (bcryptjs and the rounds give it only brief turns), one in the worker does not.
  const hashes = [bcrypt.hashSync('pw', 11), shaCrypt('pw', parseShaCryptSetting('$6$rounds=300000$s') as ShaCryptSetting)];
  for (const hash of hashes) {
    const before = performance.eventLoopUtilization();
    assert.ok(await verifyHtpasswd('pw', hash));
    const elu = performance.eventLoopUtilization(before);
    assert.ok(elu.utilization < 0.5, `${hash.slice(0, 3)}: the event loop was busy ${(elu.utilization * 100).toFixed(0)} % of ${elu.active.toFixed(0)}+${elu.idle.toFixed(0)} ms`);
    assert.equal(await verifyHtpasswd('pw!', hash), false);
  }
});

test('the password checker: in turn, bounded, ended when idle or closed, started again by the next check', async (t) => {
  const checker = new SlowHashChecker({ maxQueued: 2, idleMs: 50 });
  t.after(() => checker.close());
  const hash = bcrypt.hashSync('pw', 6);
  assert.equal(checker.running, false, 'no thread before the first check');
  const first = checker.verify('pw', hash);
  const second = checker.verify('nope', hash);
  await assert.rejects(checker.verify('pw', hash), (e: DavError) => e.code === 'DAV_ERR_AUTH_BUSY' && e.status === 503 && e.retryAfter === 1);
  assert.deepEqual(await Promise.all([first, second]), [true, false]);
  assert.equal(checker.running, true);
  for (let i = 0; i < 100 && checker.running; i++) await sleep(20);
  assert.equal(checker.running, false, 'the idle thread ended');
  assert.equal(await checker.verify('pw', hash), true, 'a new thread for the next check');
  // Closing fails what is under way; the checker still works afterwards.
  const failed = assert.rejects(checker.verify('pw', hash), /closed/);
  await checker.close();
  await failed;
  assert.equal(await checker.verify('pw', hash), true);
  await assert.rejects(checker.verify('pw', '$9$not-a-hash'), /not a bcrypt or SHA-crypt hash/);
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

test('BasicAuth: concurrent first requests with the same bcrypt credentials all pass, wrong ones all fail', async () => {
  const auth = new BasicAuth(parseHtpasswd(`alice:${bcrypt.hashSync('pw', 6)}`));
  const basic = (s: string) => fakeReq({ authorization: `Basic ${Buffer.from(s).toString('base64')}` });
  assert.deepEqual(await Promise.all(Array.from({ length: 6 }, (_, i) => auth.check(basic(i % 2 ? 'alice:pw' : 'alice:pw!')))), ['', 'alice', '', 'alice', '', 'alice'].map((u) => u || null));
  assert.equal(await auth.check(basic('alice:pw')), 'alice');
});

test('BasicAuth: a refused password is not checked again until the file changes; a right one still passes', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'users.htpasswd');
  writeFileSync(file, `alice:${bcrypt.hashSync('pw', 6)}\n`);
  const auth = await BasicAuth.fromFile(file);
  const checks = t.mock.method(slowHashes, 'verify');
  const basic = (s: string) => auth.check(fakeReq({ authorization: `Basic ${Buffer.from(s).toString('base64')}` }));
  assert.equal(await basic('alice:old'), null);
  assert.equal(await basic('alice:old'), null);
  assert.equal(checks.mock.callCount(), 1, 'the second refusal came from memory');
  assert.equal(await basic('alice:pw'), 'alice');
  assert.equal(checks.mock.callCount(), 2);
  // The file changes: what was refused may be right now.
  writeFileSync(file, `alice:${bcrypt.hashSync('old', 6)}\n`);
  await auth.reload();
  assert.equal(await basic('alice:old'), 'alice');
  assert.equal(await basic('alice:pw'), null);
  assert.equal(checks.mock.callCount(), 4);
});

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
  const forged = challenge.replace(/nonce="([^"]+)\.[^".]+"/, 'nonce="$1.AAAA"');
  assert.notEqual(forged, challenge);
  assert.equal(await auth.check(fakeReq({ authorization: digestAnswer(forged, 'alice', realm, 'pw', 'GET', '/') })), null);
  clock.now += 2000;
  const late = fakeReq({ authorization: digestAnswer(challenge, 'alice', realm, 'pw', 'GET', '/', '00000009') });
  assert.equal(await auth.check(late), null);
  assert.match(auth.challenges(late)[0] as string, /stale=true$/);
  assert.doesNotMatch(auth.challenges(fakeReq({}))[0] as string, /stale/);
});

test('DigestAuth: every challenge has its own nonce, and only a live nonce that was answered rightly is known', async () => {
  const clock = { now: 1_000_000 };
  const realm = 'dav';
  const auth = new DigestAuth(parseHtdigest(`alice:${realm}:${md5('alice:dav:pw')}`, realm), { realm, nonceLifetimeMs: 1000, now: () => clock.now });
  const nonces = new Set(Array.from({ length: 100 }, () => /nonce="([^"]+)"/.exec(auth.challenges(fakeReq({}))[0] as string)?.[1]));
  assert.equal(nonces.size, 100, 'challenges within one millisecond differ');
  const challenge = auth.challenges(fakeReq({}))[0] as string;
  const answer = (password: string, nc: string) => fakeReq({ authorization: digestAnswer(challenge, 'alice', realm, password, 'GET', '/', nc) });
  assert.equal(auth.known(fakeReq({})), false);
  assert.equal(auth.known(answer('guess', '00000001')), false);
  assert.equal(await auth.check(answer('guess', '00000001')), null);
  assert.equal(auth.known(answer('pw', '00000002')), false, 'a nonce only answered wrongly is not known');
  assert.equal(await auth.check(answer('pw', '00000002')), 'alice');
  assert.equal(auth.known(answer('guess', '00000003')), true, 'the logged-in client: its next answers are no guesses');
  assert.equal(await auth.check(answer('guess', '00000003')), null, 'known is not accepted: the answer is still checked');
  clock.now += 2000;
  assert.equal(auth.known(answer('pw', '00000004')), false, 'an expired nonce is no longer known');
});

test('reload(): a new user table from the next request on; an unusable file keeps the old one', async (t) => {
  const dir = await tempDir(t);
  const realm = 'dav';
  const digestFile = join(dir, 'users.htdigest');
  const line = (user: string, pass: string) => `${user}:${realm}:${md5(`${user}:${realm}:${pass}`)}\n`;
  writeFileSync(digestFile, line('alice', 'one'));
  const digest = await DigestAuth.fromFile(digestFile, realm);
  // Each answer counts up, as a client's do (every challenge has a nonce of its own, so any count would do).
  let count = 0;
  const as = (user: string, pass: string) => {
    const challenge = digest.challenges(fakeReq({}))[0] as string;
    const nc = (++count).toString(16).padStart(8, '0');
    return digest.check(fakeReq({ authorization: digestAnswer(challenge, user, realm, pass, 'GET', '/', nc) }));
  };
  assert.equal(await as('alice', 'one'), 'alice');
  writeFileSync(digestFile, line('alice', 'two') + line('bob', 'b'));
  assert.equal(await digest.reload(), 2);
  assert.equal(await as('alice', 'one'), null, 'the old password');
  assert.equal(await as('alice', 'two'), 'alice');
  assert.equal(await as('bob', 'b'), 'bob');
  // No user left in the realm: nobody could log in, so the file is refused and the users stay.
  writeFileSync(digestFile, `carol:elsewhere:${md5('x')}\n`);
  await assert.rejects(digest.reload(), (e: Error & { code?: string }) => e.code === 'DAV_ERR_AUTH_FILE' && /no user in realm "dav"/.test(e.message));
  assert.equal(await as('bob', 'b'), 'bob');
  rmSync(digestFile);
  await assert.rejects(digest.reload(), /cannot read the htdigest file/);
  assert.equal(await as('alice', 'two'), 'alice');

  // Basic: a check still running when the file is reloaded answers its own request, but is not remembered. Many
  // SHA-crypt rounds, checked in the worker thread, keep it running while the reload reads the file.
  const basicFile = join(dir, 'users.htpasswd');
  writeFileSync(basicFile, `alice:${shaCrypt('pw', parseShaCryptSetting('$6$rounds=150000$s') as ShaCryptSetting)}\n`);
  const basic = await BasicAuth.fromFile(basicFile);
  const req = () => fakeReq({ authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` });
  const during = basic.check(req());
  writeFileSync(basicFile, `alice:${bcrypt.hashSync('new', 4)}\n`);
  assert.equal(await basic.reload(), 1);
  assert.equal(await during, 'alice', 'checked against the table it started with');
  assert.equal(await basic.check(req()), null, 'the old password, not taken from the remembered checks');
  await assert.rejects(new BasicAuth(new Map()).reload(), /not loaded from a file/);
});

test('Digest header parameters: quoted, escaped, bare', () => {
  const p = parseDigestParams('Digest username="a\\"b", nc=00000001, qop=auth, uri="/x,y"') as Map<string, string>;
  assert.equal(p.get('username'), 'a"b');
  assert.equal(p.get('nc'), '00000001');
  assert.equal(p.get('uri'), '/x,y');
  assert.equal(parseDigestParams('Basic abc'), null);
  assert.throws(() => parseHtdigest('alice:realm:nothex', 'realm'), /user:realm:md5/);
});

test('followUserFile: a change made before the watch was ready is not missed', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'users.htpasswd');
  writeFileSync(file, `alice:${md5crypt('a', 'salt', '$apr1$')}\n`);
  const auth = await BasicAuth.fromFile(file);
  const as = (user: string, pass: string) => auth.check(fakeReq({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` }));
  const lines: string[] = [];
  const log = { info: (o: object, m: string) => lines.push(m), warn: (o: object, m: string) => lines.push(m) };
  const following = followUserFile(auth, log as never);
  // Written while the server starts: after the first read, before the watch exists.
  writeFileSync(file, `alice:${md5crypt('a', 'salt', '$apr1$')}\nbob:${md5crypt('b', 'salt', '$apr1$')}\n`);
  const follower = await following;
  t.after(() => follower.close());
  assert.equal(await as('bob', 'b'), 'bob');
  assert.equal(await as('alice', 'a'), 'alice');
  assert.deepEqual(lines, [], 'the read at start is quiet');
});

test('failed logins in the log: once a minute per address, user and reason, then with the attempts in between', () => {
  const { log, warnings } = warningLog();
  let now = 0;
  const failures = new LoginFailures(() => now);
  const wrong = { user: 'alice', reason: 'wrong password' };
  failures.note(log, '10.0.0.2', wrong);
  for (let i = 0; i < 5; i++) failures.note(log, '10.0.0.2', wrong);
  failures.note(log, '10.0.0.3', wrong);
  failures.note(log, '10.0.0.2', { user: 'alice', reason: 'unknown user' });
  failures.note(log, '10.0.0.2', { reason: 'not Basic credentials' });
  assert.equal(warnings.length, 4, 'another address, reason or user is a line of its own');
  now = 59_999;
  failures.note(log, '10.0.0.2', wrong);
  assert.equal(warnings.length, 4);
  now = 60_000;
  failures.note(log, '10.0.0.2', wrong);
  assert.equal(warnings.length, 5);
  assert.equal(warnings[4], 'login failed {"address":"10.0.0.2","user":"alice","reason":"wrong password","repeatsSinceLast":6}');
  assert.equal(warnings[3], 'login failed {"address":"10.0.0.2","reason":"not Basic credentials"}');
  // Bounded: a flood of addresses never grows the memory past its limit, it only costs lines.
  for (let i = 0; i < 5000; i++) failures.note(log, `10.1.${i >> 8}.${i & 255}`, wrong);
  assert.equal(warnings.length, 5005);
  // The proof of the bound: the flood pushed out the line logged a moment ago, so the same failure logs again.
  failures.note(log, '10.0.0.2', wrong);
  assert.equal(warnings.length, 5006);
});

test('a failed login shows at most 128 characters of the user name the client sent', () => {
  const { log, warnings } = warningLog();
  new LoginFailures().note(log, '10.0.0.2', { user: 'u'.repeat(10_000), reason: 'unknown user' });
  assert.equal(warnings.length, 1);
  assert.ok((warnings[0] as string).includes(`"user":"${'u'.repeat(128)}"`), warnings[0]);
  assert.ok(!(warnings[0] as string).includes('u'.repeat(129)));
});

test('followUserFile: a file removed while a change to it settles, then made again, is followed throughout', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'users.htpasswd');
  const hash = (pw: string) => md5crypt(pw, 'salt', '$apr1$');
  writeFileSync(file, `alice:${hash('a')}\n`);
  const auth = await BasicAuth.fromFile(file);
  const as = (user: string, pass: string) => auth.check(fakeReq({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` }));
  const lines: string[] = [];
  const log = { info: (o: object, m: string) => lines.push(m), warn: (o: object, m: string) => lines.push(m) };
  const follower = await followUserFile(auth, log as never);
  t.after(() => follower.close());
  const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
    const deadline = Date.now() + 10_000;
    while (!(await ok())) {
      if (Date.now() > deadline) assert.fail(`${what}: not within 10 s; the log: ${JSON.stringify(lines)}`);
      await sleep(20);
    }
  };
  // A change, then the file removed while the change is still settling (chokidar's awaitWriteFinish swallowed
  // the removal then, and every event of that path after it: the file made again was never read).
  writeFileSync(file, `alice:${hash('a')}\ncarol:${hash('c')}\n`);
  await sleep(20);
  rmSync(file);
  await until('the removal reported', () => lines.some((l) => /removed/.test(l)));
  assert.equal(await as('alice', 'a'), 'alice', 'the users stay while the file is gone');
  writeFileSync(file, `bob:${hash('b')}\n`);
  await until('the file made again applied', async () => (await as('bob', 'b')) === 'bob');
  assert.equal(await as('alice', 'a'), null, 'only the new file\'s users');
  // Changes keep being followed: a password changed in place, the file's size the same.
  writeFileSync(file, `bob:${md5crypt('B', 'salt', '$apr1$')}\n`);
  await until('a password changed in place', async () => (await as('bob', 'B')) === 'bob');
});

test('followUserFile: a user file switched behind a symbolic link on the way, which no watch sees, is read by the poll', async (t) => {
  const dir = await tempDir(t);
  // Kubernetes mounts a secret so: `..data` -> a dated folder, switched by a rename when the secret changes.
  mkdirSync(join(dir, 'v1'));
  mkdirSync(join(dir, 'v2'));
  writeFileSync(join(dir, 'v1', 'users'), `alice:${md5crypt('a', 'salt', '$apr1$')}\n`);
  writeFileSync(join(dir, 'v2', 'users'), `bob:${md5crypt('b', 'salt', '$apr1$')}\n`);
  symlinkSync('v1', join(dir, 'current'));
  const auth = await BasicAuth.fromFile(join(dir, 'current', 'users'));
  const as = (user: string, pass: string) => auth.check(fakeReq({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` }));
  const lines: string[] = [];
  const log = { info: (o: object, m: string) => lines.push(m), warn: (o: object, m: string) => lines.push(m) };
  const follower = await followUserFile(auth, log as never, { pollMs: 100 });
  t.after(() => follower.close());
  assert.equal(await as('alice', 'a'), 'alice');
  symlinkSync('v2', join(dir, 'next'));
  renameSync(join(dir, 'next'), join(dir, 'current'));
  const deadline = Date.now() + 10_000;
  while ((await as('bob', 'b')) !== 'bob') {
    if (Date.now() > deadline) assert.fail(`the switched file was not read within 10 s; the log: ${JSON.stringify(lines)}`);
    await sleep(20);
  }
  assert.equal(await as('alice', 'a'), null);
  assert.ok(lines.some((l) => /user file changed/.test(l)), 'the change is logged');
});
