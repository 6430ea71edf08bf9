import test from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { runCli, startCli } from '../../helpers/cli.js';
import { cliPath } from '../../helpers/paths.js';
import { tempDir } from '../../helpers/tmp.js';
import { until } from '../../helpers/wait.js';

test('every command has --help with examples, and exit code 0', async () => {
  for (const cmd of ['share', 'guest', 'serve', 'doctor', 'demo']) {
    const r = await runCli([cmd, '--help']);
    assert.equal(r.code, 0, `${cmd} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: spicedav ${cmd}`), cmd);
    assert.match(r.stdout, /Example/, `${cmd} --help shows examples`);
  }
  const root = await runCli(['--help']);
  assert.match(root.stdout, /Exit codes:/);
});

test('usage errors exit 2 with a hint; a missing folder exits 3 and says so', async (t) => {
  const bad = await runCli(['serve', '--bogus', '.']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown option '--bogus'/);
  assert.match(bad.stderr, /--help/);
  const noPort = await runCli(['serve', '.', '--port', 'http']);
  assert.equal(noPort.code, 2);
  assert.match(noPort.stderr, /not a TCP port/);
  const dir = await tempDir(t);
  const missing = await runCli(['serve', join(dir, 'nope')]);
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /does not exist/);
  const none = await runCli(['share', dir]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--spice spice:\/\/HOST:PORT, --domain NAME \(a libvirt VM\) or --qemu-socket PATH/);
  const connectAlone = await runCli(['share', dir, '--spice', 'spice://127.0.0.1:5900', '--connect', 'qemu:///system']);
  assert.equal(connectAlone.code, 2);
  assert.match(connectAlone.stderr, /--connect names the libvirt connection of --domain/);
});

test('serve refuses a public address without authentication (exit 2)', async (t) => {
  const dir = await tempDir(t);
  const r = await runCli(['serve', dir, '--host', '0.0.0.0', '--port', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /without authentication/);
});

test('serve shares a folder until Ctrl-C, then exits 0', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'hello.txt'), 'hello from the host\n');
  const cli = startCli(t, ['serve', dir, '--port', '0']);
  const [, url] = await cli.waitFor(/at (http:\/\/127\.0\.0\.1:\d+\/)/);
  assert.equal(await (await fetch(`${url}hello.txt`)).text(), 'hello from the host\n');
  const put = await fetch(`${url}new.txt`, { method: 'PUT', body: 'written through serve' });
  assert.equal(put.status, 201);
  assert.equal(await readFile(join(dir, 'new.txt'), 'utf8'), 'written through serve');
  assert.equal(await cli.stop('SIGINT'), 0);
});

test('a port that is taken or privileged: exit 3 and what to do instead (serve, demo)', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'share'));
  const blocker = createServer().listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  t.after(() => blocker.close());
  const { port } = blocker.address() as AddressInfo;
  const serve = await runCli(['serve', join(dir, 'share'), '--port', String(port)]);
  assert.equal(serve.code, 3);
  assert.equal(serve.stderr, `spicedav: port ${port} on 127.0.0.1 is in use; pick another with --port\n`);
  const demo = await runCli(['demo', '--dir', join(dir, 'share'), '--port', String(port)]);
  assert.equal(demo.code, 3);
  assert.equal(demo.stderr, `spicedav: port ${port} is in use (a spicedav guest or spice-webdavd already runs?); pick another with --port\n`);

  // Below 1024 as an ordinary user (nobody): CI runs as root, which may listen there.
  if (process.getuid?.() !== 0) return t.skip('needs root to run the CLI as another user');
  const state = join(dir, 'state');
  await mkdir(state);
  await chmod(dir, 0o755);
  await chmod(state, 0o777);
  const low = spawnSync(process.execPath, [cliPath, 'serve', join(dir, 'share'), '--port', '80', '--state-dir', state], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 30_000 });
  assert.equal(low.status, 3, low.stderr);
  assert.match(low.stderr, /^spicedav: port 80 is below 1024, which only root \(or CAP_NET_BIND_SERVICE\) may listen on; pick another with --port$/m);
});

test('a state directory that cannot be made: serve and share exit 3 naming it and --state-dir; serve --read-only needs none', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'share'));
  await writeFile(join(dir, 'a-file'), '');
  const blocked = join(dir, 'a-file', 'state'); // ENOTDIR, even for root
  // The failing call is mkdir(2), or the stat(2) a synchronous recursive mkdir makes first (state on a local disk).
  const said = (stderr: string) =>
    assert.match(stderr, new RegExp(`^spicedav: cannot open ${blocked}/props-[0-9a-f]{16}\\.jsonl, where the share's WebDAV properties are kept: ENOTDIR: not a directory, (mkdir|stat) '${blocked}'; give a folder you can write with --state-dir\\n$`));
  const serve = await runCli(['serve', join(dir, 'share'), '--port', '0', '--state-dir', blocked]);
  assert.equal(serve.code, 3);
  said(serve.stderr);
  // share checks it before it connects: nothing listens on this socket.
  const share = await runCli(['share', join(dir, 'share'), '--qemu-socket', join(dir, 'qemu.sock'), '--state-dir', blocked]);
  assert.equal(share.code, 3);
  said(share.stderr);
  const readOnly = startCli(t, ['serve', join(dir, 'share'), '--port', '0', '--read-only', '--state-dir', blocked]);
  const [, url] = await readOnly.waitFor(/at (http:\/\/127\.0\.0\.1:\d+\/)/);
  assert.equal((await fetch(url!, { method: 'PROPFIND', headers: { Depth: '1' } })).status, 207);
  assert.equal(await readOnly.stop('SIGINT'), 0);
});

test('a reader that goes away (`| head`) ends the output quietly: --help exits 0, no stack trace', async () => {
  const child = spawn(process.execPath, [cliPath, 'serve', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Closed before the child has started, so its first write meets a pipe with no reader (EPIPE).
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  assert.equal(stderr, '');
  assert.equal(code, 0);
});

test('serve whose output reader goes away stops cleanly (exit 0) after answering the request', async (t) => {
  const dir = await tempDir(t);
  const cli = startCli(t, ['serve', dir, '--port', '0']);
  const [, url] = await cli.waitFor(/at (http:\/\/127\.0\.0\.1:\d+\/)/);
  cli.child.stdout!.destroy();
  const exited = once(cli.child, 'close');
  // An upload large enough to be reported on stdout when it ends: that line is the write that meets EPIPE.
  const body = Buffer.alloc(2_000_000, 7);
  assert.equal((await fetch(`${url}big.bin`, { method: 'PUT', body })).status, 201);
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), 10_000);
  const [code] = (await exited) as [number | null];
  clearTimeout(timer);
  assert.equal(code, 0, cli.stderr);
  assert.doesNotMatch(cli.stderr, /EPIPE|at /);
  assert.deepEqual(await readFile(join(dir, 'big.bin')), body);
});

test('share waiting for a VM that is off says so once, not at every retry (the repeats are in --verbose)', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'share'));
  const cli = startCli(t, ['share', join(dir, 'share'), '--qemu-socket', join(dir, 'vm.sock'), '--no-status', '--verbose', '--log-format', 'json']);
  const retryLogs = () => cli.stderr.split('\n').filter((l) => l.includes('"code":"HOST_ERR_SOCKET"'));
  // The default backoff retries after 0.5, 1 and 2 s: wait for the third attempt's failure.
  const deadline = Date.now() + 15_000;
  while (retryLogs().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await cli.stop('SIGINT'), 0);
  const levels = retryLogs().map((l) => (JSON.parse(l) as { level: number }).level);
  assert.ok(levels.length >= 3, `three failed attempts: ${cli.stderr}`);
  assert.deepEqual(levels, [40, ...levels.slice(1).map(() => 20)], 'one warning, then debug lines');
  const stdout = cli.stdout.split('\n');
  assert.equal(stdout.filter((l) => l.startsWith('retrying')).length, 1, cli.stdout);
  assert.equal(stdout.filter((l) => l.startsWith('connecting')).length, 1, cli.stdout);
  assert.match(stdout[0]!, /^sharing .* with .*vm\.sock/);
});

test('serve --read-only refuses writes with 403 and leaves the folder alone', async (t) => {
  const dir = await tempDir(t);
  const cli = startCli(t, ['serve', dir, '--port', '0', '--read-only']);
  const [, url] = await cli.waitFor(/at (http:\/\/127\.0\.0\.1:\d+\/)/);
  assert.equal((await fetch(`${url}x.txt`, { method: 'PUT', body: 'no' })).status, 403);
  await assert.rejects(readFile(join(dir, 'x.txt')));
  assert.equal(await cli.stop('SIGTERM'), 0);
});

test('serve --htpasswd requires Basic credentials (MD5, bcrypt, SHA-crypt); a missing or DES auth file exits 3', async (t) => {
  const dir = await tempDir(t);
  // "secret" as an apr1 hash, the htpasswd default (htpasswd -nb alice secret).
  const hash = execFileSync('openssl', ['passwd', '-apr1', '-salt', 'Zb2Gq1x3', 'secret'], { encoding: 'utf8' }).trim();
  // "hunter2 ü" hashed by `htpasswd -nbB -C 5 bob`; "pw" by `openssl passwd -6`.
  const bcrypt = '$2y$05$sIB7T.a5NRCFmfuddgQSyu9p2/ftqc8NzU5soTPnS9bWosl9glNo2';
  const sha512 = execFileSync('openssl', ['passwd', '-6', '-salt', 'q7Xv', 'pw'], { encoding: 'utf8' }).trim();
  await writeFile(join(dir, 'users'), `alice:${hash}\nbob:${bcrypt}\ncarol:${sha512}\n`);
  const share = join(dir, 'share');
  await mkdir(share);
  await writeFile(join(share, 'f.txt'), 'private');
  const cli = startCli(t, ['serve', share, '--port', '0', '--htpasswd', join(dir, 'users')]);
  const [, url] = await cli.waitFor(/at (http:\/\/127\.0\.0\.1:\d+\/)/);
  const anon = await fetch(`${url}f.txt`);
  assert.equal(anon.status, 401);
  assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic realm="spicedav"/);
  const wrong = await fetch(`${url}f.txt`, { headers: { Authorization: `Basic ${Buffer.from('alice:nope').toString('base64')}` } });
  assert.equal(wrong.status, 401);
  const ok = await fetch(`${url}f.txt`, { headers: { Authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}` } });
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), 'private');
  for (const [user, pw] of [['bob', 'hunter2 ü'], ['carol', 'pw']] as const) {
    const as = (p: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${p}`).toString('base64')}` });
    assert.equal((await fetch(`${url}f.txt`, { headers: as(pw) })).status, 200, user);
    assert.equal((await fetch(`${url}f.txt`, { headers: as(`${pw}x`) })).status, 401, `${user}, a wrong password`);
  }
  // Guessing: three failures so far; after ten, each new wrong one makes this address wait (429, Retry-After).
  const basic = (credentials: string) => ({ Authorization: `Basic ${Buffer.from(credentials).toString('base64')}` });
  const guesses = async (target: string) => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await fetch(`${target}f.txt`, { headers: basic(`alice:guess${i}`) })).status);
    return statuses;
  };
  const statuses = await guesses(String(url));
  const first = statuses.indexOf(429);
  assert.ok(first >= 8 && statuses.slice(0, first).every((s) => s === 401), statuses.join(' '));
  assert.equal((await fetch(`${url}f.txt`, { headers: basic('alice:secret') })).status, 200, 'credentials checked before still pass');
  const waiting = await fetch(`${url}f.txt`, { headers: basic('alice:another') });
  assert.equal(waiting.status, 429);
  assert.match(waiting.headers.get('retry-after') ?? '', /^\d+$/);
  assert.equal(await cli.stop(), 0);
  const unthrottled = startCli(t, ['serve', share, '--port', '0', '--htpasswd', join(dir, 'users'), '--no-login-throttle']);
  const [, plain] = await unthrottled.waitFor(/at (http:\/\/127\.0\.0\.1:\d+\/)/);
  assert.deepEqual(await guesses(String(plain)), Array<number>(12).fill(401), '--no-login-throttle');
  assert.equal(await unthrottled.stop(), 0);
  const missing = await runCli(['serve', share, '--port', '0', '--htpasswd', join(dir, 'nope')]);
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /cannot read the htpasswd file/);
  await writeFile(join(dir, 'des'), 'dave:rQBf1ZW1KCR1w\n');
  const des = await runCli(['serve', share, '--port', '0', '--htpasswd', join(dir, 'des')]);
  assert.equal(des.code, 3);
  assert.match(des.stderr, /user dave has a hash this server cannot check .*htpasswd -B/);
});

test('serve --htpasswd follows its file: users added, re-passworded or removed apply without a restart; a broken file changes nothing', async (t) => {
  const dir = await tempDir(t);
  const users = join(dir, 'users');
  // Apache's own tool, as an administrator would use it (bcrypt at its lowest cost, to keep the test quick).
  const htpasswd = (...args: string[]) => execFileSync('htpasswd', args, { stdio: 'pipe' });
  htpasswd('-cbB', '-C', '4', users, 'alice', 'one');
  const share = join(dir, 'share');
  await mkdir(share);
  await writeFile(join(share, 'f.txt'), 'x');
  const cli = startCli(t, ['--verbose', 'serve', share, '--port', '0', '--htpasswd', users]);
  const [, url] = await cli.waitFor(/at (http:\/\/127\.0\.0\.1:\d+\/)/);
  const status = async (user: string, pw: string) => (await fetch(`${url}f.txt`, { headers: { Authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` } })).status;
  /** Waits (bounded) until `user:pw` gets `want`: the file is read again a moment after it changes. */
  const becomes = async (user: string, pw: string, want: number, what: string) => {
    const deadline = Date.now() + 10_000;
    while ((await status(user, pw)) !== want) {
      if (Date.now() > deadline) assert.fail(`${what}: still not ${want} after 10 s\n${cli.stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  assert.equal(await status('alice', 'one'), 200);
  assert.equal(await status('bob', 'two'), 401);
  htpasswd('-bB', '-C', '4', users, 'bob', 'two');
  await becomes('bob', 'two', 200, 'a user added');
  // alice's old password was checked and remembered above: a new one must end it.
  htpasswd('-bB', '-C', '4', users, 'alice', 'new');
  await becomes('alice', 'one', 401, 'an old password');
  assert.equal(await status('alice', 'new'), 200);
  htpasswd('-D', users, 'bob');
  await becomes('bob', 'two', 401, 'a user removed');
  assert.match(cli.stderr, /user file changed/);
  // A typo (a plain-text password) or a removed file leaves the users as they were, and says so.
  await writeFile(users, `${await readFile(users, 'utf8')}carol:plain\n`);
  await until(() => /user carol has a hash this server cannot check/.test(cli.stderr), 'the broken file reported', 10_000);
  assert.equal(await status('alice', 'new'), 200);
  assert.equal(await status('carol', 'plain'), 401);
  await rm(users);
  await until(() => /user file was removed/.test(cli.stderr), 'the removal reported', 10_000);
  assert.equal(await status('alice', 'new'), 200);
  // Made again (htpasswd -c): its users, and only they.
  htpasswd('-cbB', '-C', '4', users, 'dave', 'four');
  await becomes('dave', 'four', 200, 'a file made again');
  assert.equal(await status('alice', 'new'), 401);
  assert.equal(await cli.stop(), 0);
});

test('share --domain: libvirt not answering at start (libvirtd restarting at login) is retried, not the end', async (t) => {
  const dir = await tempDir(t);
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'virsh'), '#!/bin/sh\necho "error: failed to connect to the hypervisor" >&2\nexit 1\n', { mode: 0o755 });
  const cli = startCli(t, ['share', dir, '--domain', 'vm', '--no-status'], { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
  await cli.waitFor(/retrying in .*failed to connect to the hypervisor/, 15_000);
  assert.equal(cli.child.exitCode, null, 'share keeps asking');
  assert.equal(await cli.stop(), 0);
});
