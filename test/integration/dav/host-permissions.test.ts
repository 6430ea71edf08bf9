/**
 * The host's file permissions, as `spicedav serve` meets them when an ordinary user runs it (root ignores most
 * of them, and CI runs as root: the server is then started as nobody).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCli } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/tmp.js';

const NOBODY = 65534;

test('as an ordinary user: a read-only file is not replaced by PUT or COPY, unreadable ones are 403, the folder decides the rest', async (t) => {
  const base = await tempDir(t);
  const share = join(base, 'share');
  await mkdir(join(share, 'locked'), { recursive: true });
  await writeFile(join(share, 'ro.txt'), 'original');
  await writeFile(join(share, 'rw.txt'), 'original');
  await writeFile(join(share, 'secret.txt'), 'not for the guest');
  await writeFile(join(share, 'locked', 'in.txt'), 'kept');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, base]);
    await chmod(base, 0o755);
  }
  await chmod(join(share, 'ro.txt'), 0o444);
  await chmod(join(share, 'secret.txt'), 0o000);
  await chmod(join(share, 'locked'), 0o555);
  // Undone in the test, not in an after-hook: those run in order, and the tempDir's removal comes first.
  try {
    const cli = startCli(t, ['serve', share, '--port', '0', '--state-dir', join(base, 'state'), '--no-status'], asRoot ? { user: NOBODY } : {});
    const [, url] = await cli.waitFor(/at (http:\/\/127\.0\.0\.1:\d+\/)/);
    const put = (path: string) => fetch(`${url}${path}`, { method: 'PUT', body: 'replaced' });

    // chmod a-w keeps a file as it is, as it would for cp or an editor writing into it (rename(2) would not care).
    const refused = await put('ro.txt');
    assert.equal(refused.status, 403);
    assert.match(await refused.text(), /\/ro\.txt is read-only on the host/);
    assert.equal(await readFile(join(share, 'ro.txt'), 'utf8'), 'original');
    const copy = await fetch(`${url}rw.txt`, { method: 'COPY', headers: { Destination: `${url}ro.txt`, Overwrite: 'T' } });
    assert.equal(copy.status, 403, 'COPY onto it is cp: refused too');
    assert.equal(await readFile(join(share, 'ro.txt'), 'utf8'), 'original');
    // The same server may write where the host lets it: the refusal is the file's, not the server's.
    assert.equal((await put('rw.txt')).status, 204);
    assert.equal(await readFile(join(share, 'rw.txt'), 'utf8'), 'replaced');

    assert.equal((await fetch(`${url}secret.txt`)).status, 403);
    assert.equal((await put('locked/new.txt')).status, 403);
    assert.equal((await put('locked/in.txt')).status, 403);
    assert.equal((await fetch(`${url}locked/in.txt`, { method: 'DELETE' })).status, 403);
    assert.equal(await readFile(join(share, 'locked', 'in.txt'), 'utf8'), 'kept');
    // Removing a name is the folder's business, as for rm -f: a writable folder lets a read-only file go.
    assert.equal((await fetch(`${url}ro.txt`, { method: 'DELETE' })).status, 204);

    assert.deepEqual((await readdir(share)).sort(), ['locked', 'rw.txt', 'secret.txt'], 'no temporary file left behind');
    assert.deepEqual(await readdir(join(share, 'locked')), ['in.txt']);
    assert.equal(await cli.stop('SIGINT'), 0);
  } finally {
    await chmod(join(share, 'locked'), 0o755);
  }
});
