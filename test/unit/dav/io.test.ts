import test from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FREE_INLINE_MAX, createIo, isLocalFileSystem } from '../../../dav/storage/io.js';
import { silentLogger } from '../../../src/log.js';
import { tempDir } from '../../helpers/tmp.js';

test('inline and thread-pool I/O give the same answers and errors', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'f'), 'abc');
  for (const enabled of [true, false]) {
    const io = createIo({ enabled, maxMs: 1000, cooldownMs: 1000, log: silentLogger });
    assert.equal(io.inline, enabled);
    assert.equal((await io.stat(join(dir, 'f'))).size, 3);
    const fd = await io.open(join(dir, 'f'), 0);
    const buf = Buffer.alloc(3);
    assert.equal(await io.read(fd, buf, 0, 3, 0), 3);
    assert.equal(buf.toString(), 'abc');
    await io.close(fd);
    await assert.rejects(io.stat(join(dir, 'missing')), { code: 'ENOENT' });
    assert.deepEqual((await io.readdir(dir)).map((d) => d.name), ['f']);
  }
});

test('three slow inline calls within ten seconds move the share to the thread pool; one does not', async (t) => {
  const dir = await tempDir(t);
  // maxMs below any real call: every call counts as slow.
  const io = createIo({ enabled: true, maxMs: -1, cooldownMs: 60_000, log: silentLogger });
  await io.stat(dir);
  assert.equal(io.inline, true, 'one slow call is tolerated');
  await io.stat(dir);
  assert.equal(io.inline, true);
  await io.stat(dir);
  assert.equal(io.inline, false, 'the third trips the gate');
});

test('unlinks and renames that free a large file go to the thread pool: they neither block nor trip the gate', async (t) => {
  const dir = await tempDir(t);
  const io = createIo({ enabled: true, maxMs: -1, cooldownMs: 60_000, log: silentLogger });
  const big = FREE_INLINE_MAX + 1;
  for (let i = 0; i < 3; i++) {
    await writeFile(join(dir, 'a'), `new ${i}`);
    await writeFile(join(dir, 'b'), 'old');
    await io.rename(join(dir, 'a'), join(dir, 'b'), big);
    assert.equal(await readFile(join(dir, 'b'), 'utf8'), `new ${i}`);
    await io.unlink(join(dir, 'b'), big);
    await writeFile(join(dir, 'c'), 'x');
    await io.unlink(join(dir, 'c')); // size unknown: counts as large
  }
  assert.deepEqual(await readdir(dir), []);
  assert.equal(io.inline, true, 'none of them ran inline, so none was timed');
  // The same calls freeing small files run inline, where every call is "slow" here: the third trips the gate.
  for (let i = 0; i < 3; i++) {
    await writeFile(join(dir, 'a'), 'x');
    await io.unlink(join(dir, 'a'), 1);
  }
  assert.equal(io.inline, false);
});

test('the temporary directory is recognised as local or not without throwing', () => {
  assert.equal(typeof isLocalFileSystem('/tmp'), 'boolean');
  assert.equal(isLocalFileSystem('/nonexistent/dir'), false);
});
