/**
 * The listing cache must never serve stale data: files changed, added and removed directly on disk (behind
 * the server's back) show in the very next PROPFIND and GET, with no wait.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, rename, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, propfindBody, texts } from './harness.js';

function sizes(xml: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of xml.matchAll(/<D:href>([^<]*)<\/D:href><D:propstat><D:prop>(?:<D:getcontentlength>(\d+)<\/D:getcontentlength>)?/g)) out[m[1] ?? ''] = m[2] ?? 'dir';
  return out;
}

for (const inlineIo of [true, false]) {
  test(`PROPFIND and GET follow changes made on disk at once (${inlineIo ? 'inline' : 'thread-pool'} I/O)`, async (t) => {
    const h = await startServer(t, { inlineIo });
    const d = join(h.root, 'watched');
    await mkdir(d);
    for (let i = 0; i < 50; i++) await writeFile(join(d, `f${i}`), 'x'.repeat(i));
    const list = async () => sizes((await h.req('PROPFIND', '/watched/', { headers: { depth: '1' }, body: propfindBody('getcontentlength', 'getetag') })).body);
    const first = await list();
    assert.equal(first['/watched/f7'], '7');
    await new Promise((r) => setTimeout(r, 400)); // let the watcher become ready, so the cache is really used
    assert.deepEqual(await list(), first, 'a second listing (from the cache) is identical');
    for (let round = 0; round < 10; round++) {
      await appendFile(join(d, 'f7'), 'yy');
      await writeFile(join(d, `new${round}`), 'abc');
      await unlink(join(d, `f${20 + round}`));
      await rename(join(d, `f${40 + round}`), join(d, `moved${round}`));
      const now = await list();
      assert.equal(now['/watched/f7'], String(7 + 2 * (round + 1)), `round ${round}: size change`);
      assert.equal(now['/watched/new' + round], '3', `round ${round}: file added`);
      assert.equal(now[`/watched/f${20 + round}`], undefined, `round ${round}: file removed`);
      assert.equal(now[`/watched/moved${round}`], String(40 + round), `round ${round}: file renamed`);
      assert.equal(now[`/watched/f${40 + round}`], undefined);
      const g = await h.req('GET', '/watched/f7');
      assert.equal(g.body.length, 7 + 2 * (round + 1));
    }
    await mkdir(join(d, 'sub'));
    await writeFile(join(d, 'sub', 'inner'), '12345');
    const withSub = await h.req('PROPFIND', '/watched/', { headers: { depth: '1' }, body: propfindBody('getlastmodified') });
    const subDate = new Date(texts(withSub.body, 'getlastmodified')[0] ?? '');
    assert.ok(subDate.getTime() > 0);
    await utimes(join(d, 'sub'), new Date('2001-01-01T00:00:00Z'), new Date('2001-01-01T00:00:00Z'));
    const again = await h.req('PROPFIND', '/watched/', { headers: { depth: '1' }, body: propfindBody('getlastmodified') });
    assert.ok(again.body.includes('Mon, 01 Jan 2001 00:00:00 GMT'), 'a member directory changed in place is re-read');
    await rm(d, { recursive: true });
    assert.equal((await h.req('PROPFIND', '/watched/', { headers: { depth: '1' } })).status, 404);
  });
}

test('a listed directory moved away and replaced by another is not answered from its old listing', async (t) => {
  const h = await startServer(t);
  await mkdir(join(h.root, 'a'));
  await writeFile(join(h.root, 'a', 'x'), '12345');
  const list = async () => sizes((await h.req('PROPFIND', '/a/', { headers: { depth: '1' }, body: propfindBody('getcontentlength') })).body);
  for (let i = 0; i < 3; i++) assert.equal((await list())['/a/x'], '5');
  await rename(join(h.root, 'a'), join(h.root, 'b'));
  await mkdir(join(h.root, 'a'));
  await writeFile(join(h.root, 'a', 'x'), '1');
  assert.equal((await list())['/a/x'], '1');
  await rm(join(h.root, 'a'), { recursive: true });
  await rename(join(h.root, 'b'), join(h.root, 'a'));
  assert.equal((await list())['/a/x'], '5');
});

test('without the cache (cache: false) listings are read from disk every time', async (t) => {
  const h = await startServer(t, { cache: false });
  await writeFile(join(h.root, 'a'), '1');
  assert.deepEqual(Object.keys(sizes((await h.req('PROPFIND', '/', { headers: { depth: '1' }, body: propfindBody('getcontentlength') })).body)), ['/', '/a']);
  await writeFile(join(h.root, 'b'), '22');
  assert.equal(sizes((await h.req('PROPFIND', '/', { headers: { depth: '1' }, body: propfindBody('getcontentlength') })).body)['/b'], '2');
});
