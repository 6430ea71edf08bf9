import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, renameSync, watch, type FSWatcher } from 'node:fs';
import { EventEmitter } from 'node:events';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { dirIdentity, MetaCache } from '../../../dav/cache.js';
import type { Entry } from '../../../dav/storage/backend.js';
import { silentLogger } from '../../../src/log.js';
import { mountTmpfs, tempDir, unmountTmpfs } from '../../helpers/tmp.js';

const entry = (path: string): Entry => ({ path, collection: false, size: 1, mtimeMs: 1, ctimeMs: 1, atimeMs: 1, birthtimeMs: 1, mode: 0o644, etag: '"e"' });

/** A cache closed when the test ends. */
function openCache(t: TestContext, maxDirs = 4): MetaCache {
  const cache = new MetaCache({ maxDirs, log: silentLogger });
  t.after(() => cache.close());
  return cache;
}

async function ready(cache: MetaCache, dir: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const e = cache.epoch(dir);
    if (e >= 0) return e;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('watcher never became ready');
}

test('the barrier delivers a change made just before the lookup: the member is marked dirty', async (t) => {
  const dir = await tempDir(t);
  writeFileSync(join(dir, 'f'), 'x');
  const cache = openCache(t);
  cache.watch(dir);
  for (let round = 0; round < 20; round++) {
    assert.ok(await cache.store(dir, await ready(cache, dir), { members: new Map([['f', entry('/f')]]), complete: true }));
    // Synchronous write, then straight to the lookup: the inotify event is still unread in the kernel.
    writeFileSync(join(dir, 'f'), `changed ${round}`);
    const hit = await cache.listing(dir);
    assert.ok(hit === null || hit.listing.members.get('f') === null, `round ${round}: stale member served`);
  }
});

test('a barrier keeps the process alive until it settles, also when the last other request finishes with it', () => {
  // A process with nothing else to do: a stat completing in the same poll as the sentinel's rename used to leave
  // nothing to keep the loop running, and the process exited with the barrier unsettled (exit code 13). The
  // timeout is far beyond any wait here, so that each barrier resolves true on its event even on a loaded machine.
  const script = `
    import { stat } from 'node:fs/promises';
    import { MetaCache } from ${JSON.stringify(new URL('../../../dav/cache.js', import.meta.url).href)};
    const cache = new MetaCache({ maxDirs: 1, log: { debug() {} }, barrierTimeoutMs: 10000 });
    let settled = 0;
    for (let i = 0; i < 3000; i++) {
      const done = cache.barrier();
      for (let j = 0; j < 4; j++) void stat('.');
      if (await done) settled++;
    }
    await cache.close();
    console.log(settled);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), '3000');
});

test('create, delete and rename make the membership incomplete', async (t) => {
  const dir = await tempDir(t);
  writeFileSync(join(dir, 'a'), 'x');
  const cache = openCache(t);
  cache.watch(dir);
  assert.ok(await cache.store(dir, await ready(cache, dir), { members: new Map([['a', entry('/a')]]), complete: true }));
  assert.equal((await cache.listing(dir))?.listing.complete, true);
  renameSync(join(dir, 'a'), join(dir, 'b'));
  const hit = await cache.listing(dir);
  assert.equal(hit?.listing.complete, false);
  assert.equal(hit?.listing.members.get('a'), null);
});

test('a listing read while an event arrived is not stored (epoch check)', async (t) => {
  const dir = await tempDir(t);
  const cache = openCache(t);
  cache.watch(dir);
  const epoch = await ready(cache, dir);
  writeFileSync(join(dir, 'late'), 'x');
  await cache.barrier();
  assert.equal(await cache.store(dir, epoch, { members: new Map(), complete: true }), false);
  assert.equal(await cache.listing(dir), null);
});

test('a listing read while its directory moved away is not stored, even with the event still unread', async (t) => {
  const base = await tempDir(t);
  const dir = join(base, 'd');
  await mkdir(join(dir, 'b'), { recursive: true });
  const cache = openCache(t);
  cache.watch(dir);
  const epoch = await ready(cache, dir);
  // The listing read 'b' as gone because the directory was elsewhere when 'b' was stat'ed; it then came back.
  renameSync(dir, join(base, 'away'));
  const stored = cache.store(dir, epoch, { members: new Map([['b', false]]), complete: true });
  renameSync(join(base, 'away'), dir);
  assert.equal(await stored, false);
  assert.equal(await cache.listing(dir), null, 'no listing hides the b that is there');
});

test('a watch placed after its directory was replaced is dropped, so the first directory coming back is not trusted', async (t) => {
  const base = await tempDir(t);
  const dir = join(base, 'd');
  await mkdir(dir);
  const first = dirIdentity(statSync(dir));
  renameSync(dir, join(base, 'first'));
  await mkdir(dir);
  const cache = openCache(t);
  cache.watch(dir, first);
  await cache.barrier();
  for (let i = 0; i < 100 && cache.epoch(dir) >= 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(cache.epoch(dir), -1, 'the watch on the newcomer was dropped');
  // Without that, this state would match the first directory again and never see its changes.
  rmSync(dir, { recursive: true });
  renameSync(join(base, 'first'), dir);
  assert.equal(cache.epoch(dir, first), -1);
});

test('when inotify may have dropped events (its queue overflowed), no listing is trusted', async (t) => {
  const limit = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
  if (!(limit <= 65536)) return t.skip(`max_queued_events is ${limit}: too many files to overflow it here`);
  const base = await tempDir(t);
  const [busy, quiet] = [join(base, 'busy'), join(base, 'quiet')];
  await mkdir(busy);
  await mkdir(quiet);
  const cache = openCache(t);
  cache.watch(busy);
  cache.watch(quiet);
  assert.ok(await cache.store(quiet, await ready(cache, quiet), { members: new Map(), complete: true }));
  // The loop is blocked while the queue fills past its limit: the kernel drops quiet's event.
  for (let i = 0; i <= limit; i++) writeFileSync(join(busy, `f${i}`), '');
  writeFileSync(join(quiet, 'x'), '');
  // Let the loop read the queue (and lose x's event), so that the barrier below passes.
  await new Promise((r) => setTimeout(r, 100));
  const hit = await cache.listing(quiet);
  assert.ok(hit === null || hit.listing.complete === false, 'a listing that misses x is not served');
});

test('a sentinel event the kernel dropped costs one barrier a timeout, and the next barriers pass', async (t) => {
  const limit = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
  if (!(limit <= 65536)) return t.skip(`max_queued_events is ${limit}: too many files to overflow it here`);
  const busy = await tempDir(t);
  const cache = openCache(t);
  cache.watch(busy);
  assert.equal(await cache.barrier(), true);
  const [sentinel, ...others] = readdirSync(tmpdir()).filter((n) => n.startsWith(`spicedav-sentinel-${process.pid}-`));
  assert.ok(sentinel !== undefined && others.length === 0, 'one live cache in this process');
  // With the loop blocked, fill the queue past its limit, then let the barrier's rename run in the thread pool
  // (the promise jobs below start it) while the queue is still full: the kernel drops its event.
  for (let i = 0; i <= limit; i++) writeFileSync(join(busy, `f${i}`), '');
  const dropped = cache.barrier();
  for (let i = 0; i < 3; i++) await Promise.resolve();
  const until = Date.now() + 10_000;
  while (!existsSync(join(tmpdir(), sentinel, 'r2')) && Date.now() < until);
  assert.equal(await dropped, false, 'the round whose event was dropped times out');
  // Counting events instead of naming rounds left every later barrier one event short: each timed out.
  for (let round = 0; round < 3; round++) assert.equal(await cache.barrier(), true, `barrier ${round} after the drop`);
});

test('a sentinel removed from under the cache (a /tmp cleaner) is replaced, and barriers go on passing', async (t) => {
  const cache = openCache(t);
  const sentinels = () => readdirSync(tmpdir()).filter((n) => n.startsWith(`spicedav-sentinel-${process.pid}-`));
  assert.equal(await cache.barrier(), true);
  const [first, ...others] = sentinels();
  assert.ok(first !== undefined && others.length === 0, 'one live cache in this process');
  rmSync(join(tmpdir(), first), { recursive: true });
  // Without a new sentinel every barrier failed from here on, and no listing was ever served from the cache.
  for (let round = 0; round < 3; round++) assert.equal(await cache.barrier(), true, `barrier ${round} after the removal`);
  const [second, ...more] = sentinels();
  assert.ok(second !== undefined && second !== first && more.length === 0, 'one new sentinel directory');
  await cache.close();
  assert.deepEqual(sentinels(), [], 'closing removes the new one');
});

test('a sentinel whose watch fails (Windows: its folder deleted) answers its barrier at once and is replaced', async (t) => {
  // inotify reports no such error, so the first watch is a stand-in that emits no events and then fails.
  const stalled = Object.assign(new EventEmitter(), { close: () => {}, ref: () => stalled, unref: () => stalled }) as unknown as FSWatcher;
  const made: string[] = [];
  const warnings: string[] = [];
  const cache = new MetaCache({
    maxDirs: 2,
    barrierTimeoutMs: 60_000,
    log: { ...silentLogger, warn: (_o: object, msg: string) => void warnings.push(msg) },
    watchDir: (dir) => (made.push(dir), made.length === 1 ? stalled : watch(dir, { persistent: false })),
  });
  t.after(() => cache.close());
  const first = made[0] as string;
  const waiting = cache.barrier();
  // Once the sentinel is renamed the barrier waits for an event the stand-in never sends.
  while (!existsSync(join(first, 'r1'))) await new Promise((r) => setTimeout(r, 2));
  const started = Date.now();
  stalled.emit('error', Object.assign(new Error('EPERM: operation not permitted, watch'), { code: 'EPERM' }));
  assert.equal(await waiting, false, 'the barrier is not trusted');
  assert.ok(Date.now() - started < 30_000, 'answered when the watch failed, not at its timeout');
  assert.deepEqual(warnings, ['the metadata cache sentinel watch failed; the next barrier makes a new one']);
  for (let round = 0; round < 3; round++) assert.equal(await cache.barrier(), true, `barrier ${round} after the failure`);
  assert.equal(made.length, 2, 'one new sentinel watch');
  assert.ok(!existsSync(first) && existsSync(made[1] as string), 'the failed sentinel folder is removed');
});

test('a sentinel that cannot be removed does not make close() fail: the watches still close, the log says so', async (t) => {
  // A file system mounted inside the sentinel directory: rmdir of a mount point fails (EBUSY), even for root.
  const dir = await tempDir(t);
  const warnings: string[] = [];
  const sentinels = () => readdirSync(tmpdir()).filter((n) => n.startsWith(`spicedav-sentinel-${process.pid}-`));
  const before = new Set(sentinels());
  const cache = new MetaCache({ maxDirs: 2, log: { ...silentLogger, warn: (_o: object, msg: string) => void warnings.push(msg) } });
  const sentinel = join(tmpdir(), sentinels().find((n) => !before.has(n)) as string);
  const blocker = join(sentinel, 'mounted');
  await mkdir(blocker);
  if (!mountTmpfs(t, blocker, '1m')) return cache.close();
  try {
    cache.watch(dir);
    await ready(cache, dir);
    await cache.close();
    assert.equal(cache.epoch(dir), -1, 'the directory watches are closed');
    assert.deepEqual(warnings, ['cannot remove the metadata cache sentinel; it is tried again at exit']);
  } finally {
    unmountTmpfs(blocker);
    rmSync(sentinel, { recursive: true, force: true });
  }
});

test('at most maxDirs directories are watched; the least recently used goes first', async (t) => {
  const base = await tempDir(t);
  const cache = openCache(t, 2);
  const dirs = ['a', 'b', 'c'].map((n) => join(base, n));
  for (const d of dirs) await mkdir(d);
  cache.watch(dirs[0] as string);
  cache.watch(dirs[1] as string);
  await ready(cache, dirs[0] as string);
  cache.watch(dirs[2] as string);
  assert.equal(cache.epoch(dirs[0] as string), -1);
  await ready(cache, dirs[2] as string);
  assert.ok(cache.epoch(dirs[1] as string) >= 0);
});

test('after close the cache answers nothing and the barrier resolves false', async (t) => {
  const dir = await tempDir(t);
  const cache = new MetaCache({ maxDirs: 2, log: silentLogger });
  cache.watch(dir);
  await ready(cache, dir);
  await cache.close();
  assert.equal(await cache.barrier(), false);
  assert.equal(await cache.listing(dir), null);
});

test('a barrier still waiting when the cache closes resolves false at once, not at its timeout', async () => {
  // Closing at different points of a barrier's round: before its rename, while the rename runs, and after, with the
  // sentinel's event not yet read. The last used to wait out the whole timeout, since a closed watcher reads
  // no more events; a closing server's requests and the process's exit waited with it.
  for (let round = 0; round < 30; round++) {
    const cache = new MetaCache({ maxDirs: 1, log: silentLogger, barrierTimeoutMs: 60_000 });
    const barrier = cache.barrier();
    for (let i = 0; i < round % 4; i++) await new Promise((resolve) => setImmediate(resolve));
    await cache.close();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still waiting'), 5_000)));
    const outcome = await Promise.race([barrier, late]);
    clearTimeout(timer);
    assert.notEqual(outcome, 'still waiting', `round ${round}`);
  }
});

test('sentinel directories left by killed processes are removed by the next cache; live ones are kept', async () => {
  const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid as number;
  const stale = mkdtempSync(join(tmpdir(), `spicedav-sentinel-${dead}-`));
  const live = mkdtempSync(join(tmpdir(), `spicedav-sentinel-${process.ppid}-`));
  try {
    const cache = new MetaCache({ maxDirs: 4, log: silentLogger });
    assert.equal(existsSync(stale), false, `the dead process's ${stale} is gone`);
    assert.equal(existsSync(live), true, 'a running process keeps its directory');
    await cache.close();
  } finally {
    rmSync(stale, { recursive: true, force: true });
    rmSync(live, { recursive: true, force: true });
  }
});
