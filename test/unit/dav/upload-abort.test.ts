import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { FsStorage } from '../../../dav/storage/fs.js';
import { createIo } from '../../../dav/storage/io.js';
import { Confinement } from '../../../dav/paths.js';
import { silentLogger } from '../../../src/log.js';
import { hasCode } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';

/**
 * Every close(2) made while `run` runs that failed with EBADF: a descriptor closed twice. The second close of a
 * number the kernel already handed to another open (a concurrent GET's file) closes that file instead, and a
 * later open given the number makes the GET read another file: answers cross between requests.
 */
async function doubleCloses(run: () => Promise<unknown>): Promise<number[]> {
  const bad: number[] = [];
  const { close, closeSync } = fs;
  fs.close = ((fd: number, cb?: fs.NoParamCallback) =>
    close(fd, (err) => {
      if (err?.code === 'EBADF') bad.push(fd);
      cb?.(err);
    })) as typeof fs.close;
  fs.closeSync = (fd: number) => {
    try {
      closeSync(fd);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EBADF') bad.push(fd);
      throw err;
    }
  };
  try {
    await run();
  } finally {
    fs.close = close;
    fs.closeSync = closeSync;
  }
  return bad;
}

for (const inline of [true, false]) {
  test(`an upload cut halfway closes its temporary file once and keeps the old file (${inline ? 'inline' : 'thread-pool'} I/O)`, async (t) => {
    const root = await tempDir(t);
    const io = createIo({ enabled: inline, maxMs: 1000, cooldownMs: 0, log: silentLogger });
    const storage = new FsStorage(new Confinement(root, 'never', io), { io, cache: null });
    await writeFile(join(root, 'keep.bin'), 'the old file\n');

    const body = new PassThrough();
    const pending = await storage.prepareWrite('/keep.bin');
    const bad = await doubleCloses(async () => {
      // Big enough for the streaming path (a declared 1 MiB), cut after 512 KiB: the client went away.
      const upload = pending.commit(body, { maxBytes: 1 << 30, declaredLength: 1 << 20 });
      body.write(Buffer.alloc(512 * 1024, 1));
      // The cut may come before pipeline() listens (the thread-pool open is still running): not an unhandled error.
      body.on('error', () => {});
      setImmediate(() => body.destroy(new Error('the client went away')));
      await assert.rejects(upload, (e: Error) => hasCode(e, 'DAV_ERR_IO'));
      // A stream left to close the descriptor itself does so after the failure has settled: wait for it.
      await sleep(50);
    });

    assert.deepEqual(bad, [], 'a descriptor was closed twice');
    assert.equal(await readFile(join(root, 'keep.bin'), 'utf8'), 'the old file\n');
    assert.deepEqual(await readdir(root), ['keep.bin'], 'the temporary is removed');
  });
}
