import test from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createIo, isLocalFileSystem } from '../../../dav/storage/io.js';
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

test('the temporary directory is recognised as local or not without throwing', () => {
  assert.equal(typeof isLocalFileSystem('/tmp'), 'boolean');
  assert.equal(isLocalFileSystem('/nonexistent/dir'), false);
});
