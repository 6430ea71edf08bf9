/**
 * Host file systems that do not behave like ext4. One that ignores case (macOS, Windows, FAT and exFAT sticks)
 * takes `Photos` for `photos`: Windows Explorer renames `photos` to `Photos` with a MOVE (Overwrite: F), and
 * replacing that "existing destination" the usual way would delete the folder being renamed. FAT and exFAT have no
 * hard links, which a PUT that may only create uses where it can. Hard links are two names of one file. And
 * applications leave FIFOs and sockets in folders, which are no files to serve.
 */
import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { link, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { startServer, texts, type Harness } from './harness.js';
import { mountExfat } from '../../helpers/tmp.js';

test('a hard link of the source: MOVE removes the source name (rename(2) alone would not), Overwrite: F is 412', async (t) => {
  const h = await startServer(t);
  assert.equal((await h.req('PUT', '/a.txt', { body: 'data' })).status, 201);
  await link(join(h.root, 'a.txt'), join(h.root, 'b.txt'));
  assert.equal((await h.req('MOVE', '/a.txt', { headers: { destination: '/b.txt', overwrite: 'F' } })).status, 412);
  assert.equal((await h.req('MOVE', '/a.txt', { headers: { destination: '/b.txt' } })).status, 204);
  assert.deepEqual(await readdir(h.root), ['b.txt']);
  assert.equal(await readFile(join(h.root, 'b.txt'), 'utf8'), 'data');
  assert.equal((await h.req('GET', '/a.txt')).status, 404);

  await link(join(h.root, 'b.txt'), join(h.root, 'c.txt'));
  assert.equal((await h.req('COPY', '/b.txt', { headers: { destination: '/c.txt' } })).status, 204);
  assert.notEqual((await stat(join(h.root, 'b.txt'))).ino, (await stat(join(h.root, 'c.txt'))).ino, 'the copy is a file of its own');
  assert.equal(await readFile(join(h.root, 'c.txt'), 'utf8'), 'data');
});

const LOCK_BODY = '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>';

test('FIFOs and sockets in the share are neither listed nor served nor replaced nor locked; COPY of their folder copies the rest', async (t) => {
  const h = await startServer(t);
  await mkdir(join(h.root, 'd'));
  await writeFile(join(h.root, 'd', 'x.txt'), 'x');
  execFileSync('mkfifo', [join(h.root, 'd', 'pipe')]);
  const sock = net.createServer().listen(join(h.root, 'd', 'sock'));
  t.after(() => sock.close());
  await once(sock, 'listening');

  const listing = await h.req('PROPFIND', '/d/', { headers: { depth: '1' } });
  assert.equal(listing.status, 207);
  assert.deepEqual(texts(listing.body, 'href').sort(), ['/d/', '/d/x.txt']);
  // A GET that opened the FIFO would wait for a writer forever; it is refused from its type alone.
  for (const name of ['pipe', 'sock']) {
    assert.equal((await h.req('GET', `/d/${name}`)).status, 403, `GET ${name}`);
    assert.equal((await h.req('PUT', `/d/${name}`, { body: 'data' })).status, 403, `PUT ${name}`);
    assert.equal((await h.req('LOCK', `/d/${name}`, { body: LOCK_BODY })).status, 403, `LOCK ${name}`);
  }
  assert.equal((await h.req('COPY', '/d/', { headers: { destination: '/copy/' } })).status, 201);
  assert.deepEqual(await readdir(join(h.root, 'copy')), ['x.txt']);
  assert.deepEqual((await readdir(join(h.root, 'd'))).sort(), ['pipe', 'sock', 'x.txt'], 'the source is as it was');
  // MOVE renames the folder: what it holds goes along, nothing of the host's is lost.
  assert.equal((await h.req('MOVE', '/d/', { headers: { destination: '/moved/' } })).status, 201);
  assert.deepEqual((await readdir(join(h.root, 'moved'))).sort(), ['pipe', 'sock', 'x.txt']);
});

test('a host that ignores case: MOVE renames photos to Photos (folder and file), COPY onto itself is 403, nothing lost', async (t) => {
  const share = await exfatShare(t);
  if (!share) return;
  const { h, root } = share;
  try {
    assert.equal((await h.req('MKCOL', '/photos/')).status, 201);
    assert.equal((await h.req('PUT', '/photos/a.jpg', { body: 'jpeg' })).status, 201);
    assert.equal((await h.req('GET', '/PHOTOS/A.JPG')).body, 'jpeg', 'the file system does ignore case');

    // Explorer's rename: Overwrite: F, and the destination "exists".
    const renamed = await h.req('MOVE', '/photos/', { headers: { destination: '/Photos/', overwrite: 'F' } });
    assert.ok(renamed.status === 201 || renamed.status === 204, `MOVE photos → Photos: ${renamed.status} ${renamed.body}`);
    assert.deepEqual(await readdir(root), ['Photos']);
    assert.equal(await readFile(join(root, 'Photos', 'a.jpg'), 'utf8'), 'jpeg');
    // The default, Overwrite: T, is where the folder used to be deleted first.
    assert.equal((await h.req('MOVE', '/Photos/', { headers: { destination: '/PHOTOS/' } })).status, 204);
    assert.deepEqual(await readdir(root), ['PHOTOS']);
    assert.deepEqual(await readdir(join(root, 'PHOTOS')), ['a.jpg']);

    assert.equal((await h.req('PUT', '/note.txt', { body: 'note' })).status, 201);
    assert.equal((await h.req('MOVE', '/note.txt', { headers: { destination: '/Note.txt' } })).status, 204);
    assert.equal((await h.req('COPY', '/Note.txt', { headers: { destination: '/NOTE.TXT' } })).status, 403);
    assert.equal((await h.req('COPY', '/PHOTOS/', { headers: { destination: '/photos/' } })).status, 403);
    assert.deepEqual((await readdir(root)).sort(), ['Note.txt', 'PHOTOS']);
    assert.equal(await readFile(join(root, 'Note.txt'), 'utf8'), 'note');
    assert.deepEqual(await readdir(join(root, 'PHOTOS')), ['a.jpg']);

    // Another file whose name differs only in case is still replaced as asked.
    assert.equal((await h.req('PUT', '/other.txt', { body: 'other' })).status, 201);
    assert.equal((await h.req('MOVE', '/other.txt', { headers: { destination: '/NOTE.txt' } })).status, 204);
    assert.equal((await readdir(root)).filter((n) => n.toLowerCase() === 'note.txt').length, 1, 'one of the two names is left');
    assert.equal((await h.req('GET', '/note.txt')).body, 'other');
    assert.equal((await h.req('GET', '/other.txt')).status, 404);
  } finally {
    share.unmount();
  }
});

test('a host without hard links (exFAT): a PUT that may only create (If-None-Match: *) creates, and is 412 over a file', async (t) => {
  const share = await exfatShare(t);
  if (!share) return;
  const { h, root } = share;
  try {
    const put = (body: string) => h.req('PUT', '/new.txt', { body, headers: { 'if-none-match': '*' } });
    assert.equal((await put('first')).status, 201);
    assert.equal((await put('second')).status, 412);
    assert.equal(await readFile(join(root, 'new.txt'), 'utf8'), 'first');
    assert.deepEqual(await readdir(root), ['new.txt'], 'no temporary left behind');
  } finally {
    share.unmount();
  }
});

/** A DavServer sharing a folder on a fresh exFAT file system; null when the test is skipped (see mountExfat). */
async function exfatShare(t: TestContext): Promise<{ h: Harness; root: string; unmount: () => void } | null> {
  const mount = await mountExfat(t);
  if (!mount) return null;
  try {
    const root = join(mount.dir, 'share');
    await mkdir(root);
    return { h: await startServer(t, { root }), root, unmount: mount.unmount };
  } catch (err) {
    mount.unmount();
    throw err;
  }
}
