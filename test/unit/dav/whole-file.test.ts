import test from 'node:test';
import assert from 'node:assert/strict';
import { truncate, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { wholeFile } from '../../../dav/methods/get.js';
import { FsStorage } from '../../../dav/storage/fs.js';
import { createIo } from '../../../dav/storage/io.js';
import { Confinement } from '../../../dav/paths.js';
import { silentLogger } from '../../../src/log.js';
import { hasCode } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';

// A small GET announces the size it saw at open time; the host may change the file before it is read.
for (const inline of [true, false]) {
  test(`a small file cut short on the host between open and read is an error, not a short body (${inline ? 'inline' : 'thread-pool'} I/O)`, async (t) => {
    const root = await tempDir(t);
    const io = createIo({ enabled: inline, maxMs: 1000, cooldownMs: 0, log: silentLogger });
    const storage = new FsStorage(new Confinement(root, 'never', io), { io, cache: null });
    await writeFile(join(root, 'f.txt'), 'a whole sentence of forty-two bytes here.\n');

    const cut = await storage.openRead('/f.txt');
    assert.ok(!('collection' in cut));
    await truncate(join(root, 'f.txt'), 10);
    await assert.rejects(wholeFile(cut, '/f.txt'), (e: Error) => hasCode(e, 'DAV_ERR_FILE_SHRANK'));
    await cut.close();

    // A file that grew is sent as it was when opened (its announced length), and one that did not change whole.
    const grown = await storage.openRead('/f.txt');
    assert.ok(!('collection' in grown));
    await appendFile(join(root, 'f.txt'), 'and more');
    assert.equal((await wholeFile(grown, '/f.txt')).toString(), 'a whole se');
    await grown.close();
  });
}
