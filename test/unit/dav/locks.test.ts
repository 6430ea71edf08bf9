import test from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readdir, readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { LockManager } from '../../../dav/locks.js';
import { DavError } from '../../../dav/errors.js';
import { silentLogger } from '../../../src/log.js';
import { tempDir } from '../../helpers/tmp.js';

/** A lock table in memory, on a fake clock. */
async function manager() {
  const clock = { now: 1_000_000 };
  const m = await LockManager.open(null, silentLogger, { defaultTimeout: 100, maxTimeout: 1000, maxLocks: 3, now: () => clock.now });
  return { m, clock };
}
const req = (path: string, scope: 'exclusive' | 'shared' = 'exclusive', depth: 0 | 'infinity' = 0, timeouts: number[] = []) => ({ path, scope, depth, owner: null, timeouts });
/** The status a lock operation failed with; 0 when it did not. */
const status = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DavError);
    return err.status;
  }
  return 0;
};

test('timeouts: the client wish capped, the default for none or Infinite', async () => {
  const { m } = await manager();
  assert.equal((await m.create(req('/a', 'shared', 0, [50]))).timeout, 50);
  assert.equal((await m.create(req('/b', 'shared', 0, [5000]))).timeout, 1000);
  assert.equal((await m.create(req('/c', 'shared', 0, [Infinity, 20]))).timeout, 100);
});

test('expired locks vanish: they block nobody and are not listed', async () => {
  const { m, clock } = await manager();
  const l = await m.create(req('/a', 'exclusive', 'infinity', [10]));
  assert.equal(m.covering('/a/b').length, 1);
  assert.equal(m.remaining(l), 10);
  clock.now += 9_999;
  assert.equal(m.get(l.token)?.token, l.token);
  clock.now += 1;
  assert.equal(m.get(l.token), undefined);
  assert.equal(m.covering('/a/b').length, 0);
  assert.equal(m.size, 0);
  assert.equal(await status(m.create(req('/a'))), 0);
});

test('refresh extends a lock; an unknown token is 412', async () => {
  const { m, clock } = await manager();
  const l = await m.create(req('/a', 'exclusive', 0, [10]));
  clock.now += 8_000;
  await m.refresh(l.token, [10]);
  clock.now += 8_000;
  assert.ok(m.get(l.token));
  assert.equal(await status(m.refresh('urn:uuid:nope', [])), 412);
});

test('conflicts: exclusive vs anything, shared with shared, depth infinity reaches descendants', async () => {
  const { m } = await manager();
  await m.create(req('/s', 'shared'));
  assert.equal(await status(m.create(req('/s', 'shared'))), 0);
  assert.equal(await status(m.create(req('/s', 'exclusive'))), 423);
  const { m: m2 } = await manager();
  await m2.create(req('/d/e', 'exclusive'));
  assert.equal(await status(m2.create(req('/d', 'exclusive', 'infinity'))), 423);
  assert.equal(await status(m2.create(req('/d', 'exclusive', 0))), 0);
  const { m: m3 } = await manager();
  await m3.create(req('/p', 'exclusive', 'infinity'));
  assert.equal(await status(m3.create(req('/p/q/r', 'shared'))), 423);
  assert.equal(await status(m3.create(req('/pq', 'exclusive'))), 0);
});

test('covering, below, at and removeWithin', async () => {
  const { m } = await manager();
  const a = await m.create(req('/a', 'shared', 'infinity'));
  const b = await m.create(req('/a/b/c', 'shared', 0));
  assert.deepEqual(m.covering('/a/b/c').map((l) => l.token).sort(), [a.token, b.token].sort());
  assert.deepEqual(m.covering('/a/b/c/d').map((l) => l.token), [a.token]);
  assert.deepEqual(m.below('/a').map((l) => l.token), [b.token]);
  assert.deepEqual(m.at('/a/b/c').map((l) => l.token), [b.token]);
  await m.removeWithin('/a/b');
  assert.equal(m.get(b.token), undefined);
  assert.ok(m.get(a.token));
  assert.ok(await m.remove(a.token));
  assert.ok(!(await m.remove(a.token)));
});

test('maxLocks bounds the table with 503, which says when the first lock ends (Retry-After)', async () => {
  const { m, clock } = await manager();
  await m.create(req('/1', 'exclusive', 0, [300]));
  const short = await m.create(req('/2', 'exclusive', 0, [40]));
  await m.create(req('/3', 'exclusive', 0, [500]));
  clock.now += 10_500;
  const full = await m.create(req('/4')).then(() => assert.fail('a fourth lock was granted'), (err: unknown) => err);
  assert.ok(full instanceof DavError);
  assert.equal(full.status, 503);
  assert.equal(full.code, 'DAV_ERR_TOO_MANY_LOCKS');
  assert.equal(full.retryAfter, 30, '40 s lock, 10.5 s later: 29.5 s left, rounded up');
  // Once the short lock is gone the next-ending one (300 s, 289.5 s left) sets the time.
  assert.ok(await m.remove(short.token));
  await m.create(req('/4', 'exclusive', 0, [1000]));
  const again = await m.create(req('/5')).then(() => assert.fail('a fourth lock was granted'), (err: unknown) => err);
  assert.ok(again instanceof DavError);
  assert.equal(again.retryAfter, 290);
  // And at that time, there is room.
  clock.now += 290_000;
  assert.ok(await m.create(req('/5')));
});

test('tokens are unique urn:uuid URNs', async () => {
  const { m } = await manager();
  const t1 = (await m.create(req('/x', 'shared'))).token;
  const t2 = (await m.create(req('/x', 'shared'))).token;
  assert.match(t1, /^urn:uuid:[0-9a-f-]{36}$/);
  assert.notEqual(t1, t2);
});

/** The pid of a process that has exited: a server killed on this host. */
const deadPid = (): string => spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
const limits = { defaultTimeout: 100, maxTimeout: 1000, maxLocks: 100 };

/** Two managers on one journal stand for two processes serving one folder (two VMs sharing ~/Public). */
test('two processes on one journal: a lock granted by one holds in the other, and either can see it go', async (t) => {
  const file = join(await tempDir(t), 'state', 'locks.jsonl');
  const a = await LockManager.open(file, silentLogger, limits);
  const b = await LockManager.open(file, silentLogger, limits);
  const l = await a.create(req('/doc.docx'));
  // Granting catches up under the journal's lock first: no sync needed to meet the other's lock.
  assert.equal(await status(b.create(req('/doc.docx', 'shared'))), 423);
  assert.equal(await status(b.create(req('/', 'exclusive', 'infinity'))), 423, 'a depth-infinity lock above it conflicts too');
  await b.sync();
  assert.deepEqual(b.covering('/doc.docx').map((x) => x.token), [l.token]);
  assert.equal(b.get(l.token)?.owner, null);
  await b.refresh(l.token, [500]);
  await a.sync();
  assert.equal(a.get(l.token)?.timeout, 500, 'a refresh through the other is seen');
  assert.ok(await b.remove(l.token), 'an UNLOCK may come through either');
  await a.sync();
  assert.equal(a.size, 0);
  await Promise.all([a.close(), b.close()]);
});

test('two processes granting the same exclusive lock at once: exactly one gets it', async (t) => {
  const file = join(await tempDir(t), 'locks.jsonl');
  const a = await LockManager.open(file, silentLogger, limits);
  // One process makes its calls inline (a local disk), the other in the thread pool (what a network disk gets).
  const b = await LockManager.open(file, silentLogger, limits, { inlineIo: false });
  for (let i = 0; i < 20; i++) {
    const results = await Promise.allSettled([a.create(req(`/f${i}`)), b.create(req(`/f${i}`)), a.create(req(`/f${i}`, 'shared'))]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${i}`);
  }
  await Promise.all([a.sync(), b.sync()]);
  assert.equal(a.size, 20);
  assert.equal(b.size, 20);
  await Promise.all([a.close(), b.close()]);
});

/** A lock line as another server process would have appended it, on `path` with token `urn:uuid:<path>`. */
const added = (path: string, by: string, expires = Date.now() + 600_000) =>
  JSON.stringify({ add: { token: `urn:uuid:${path}`, path, depth: 0, scope: 'exclusive', owner: null, timeout: 600, expires, by } }) + '\n';

test('a lock outlives its server for the grace: it still guards the file, and its client takes it back through another', async (t) => {
  const file = join(await tempDir(t), 'locks.jsonl');
  const clock = { now: Date.now() };
  const opts = { ...limits, orphanGrace: 60, now: () => clock.now };
  const a = await LockManager.open(file, silentLogger, opts);
  const b = await LockManager.open(file, silentLogger, opts);
  await a.create(req('/dropped'));
  const claimed = await a.create(req('/claimed'));
  await a.close();
  await b.sync();
  assert.equal(b.covering('/dropped').length, 1, 'a closed server hands its locks over, it does not release them');
  assert.equal(await status(b.create(req('/dropped', 'shared'))), 423, 'an orphan still guards its file');
  await b.claim(new Set([claimed.token, 'urn:uuid:not-a-lock']));
  clock.now += 60_000;
  assert.deepEqual(b.covering('/dropped'), [], 'an orphan nobody claimed ends with its grace');
  assert.equal(b.get(claimed.token)?.path, '/claimed', 'a claimed lock lives on past the grace');
  assert.equal(await status(b.create(req('/dropped'))), 0);
  await b.close();

  // The claim is in the journal: a third process replaying it sees the lock held (by b, now gone: orphaned again).
  clock.now += 1_000;
  const c = await LockManager.open(file, silentLogger, opts);
  assert.equal(c.get(claimed.token)?.path, '/claimed');
  clock.now += 60_000;
  assert.equal(c.get(claimed.token), undefined, 'b closed too: its grace has passed');
  await c.close();
});

test('the locks of a process that is gone are orphaned: kept for the grace, then dropped unless claimed', async (t) => {
  const file = join(await tempDir(t), 'locks.jsonl');
  const clock = { now: Date.now() };
  const b = await LockManager.open(file, silentLogger, { ...limits, orphanGrace: 60, now: () => clock.now });
  const kept = await b.create(req('/b'));
  // Locks other servers granted and never released: one killed on this host, one earlier process that had this
  // pid (pid 1 in a container), and one on another host sharing the state directory (only its timeout ends it).
  const expires = clock.now + 600_000;
  await appendFile(file, added('/killed', `${deadPid()} ${hostname()} 0a0b0c`, expires) + added('/reused', `${process.pid} ${hostname()} 0a0b0c`, expires) + added('/remote', '77 elsewhere 0a0b0c', expires) + added('/back', `${deadPid()} ${hostname()} 0a0b0c`, expires));
  await b.sync();
  for (const path of ['/killed', '/reused', '/remote', '/back']) assert.equal(b.covering(path).length, 1, `${path} is kept for now`);
  assert.equal(await status(b.create(req('/killed'))), 423, 'an orphan blocks others during its grace');
  await b.claim(new Set(['urn:uuid:/back']));
  clock.now += 60_000;
  assert.deepEqual(b.covering('/killed'), []);
  assert.deepEqual(b.covering('/reused'), []);
  assert.equal(b.covering('/remote').length, 1, 'a lock of another host ends by its timeout only');
  assert.equal(b.covering('/back').length, 1, 'its client came back in time');
  assert.equal(await status(b.create(req('/killed'))), 0, 'after its grace an orphan blocks nobody');
  assert.ok(b.get(kept.token), 'its own lock stays');
  clock.now += 600_000;
  assert.equal(b.get('urn:uuid:/back'), undefined, 'a claimed lock still ends with its own timeout');
  await b.close();
});

test("the grace of a killed server's lock runs from when the first process found it, in every process", async (t) => {
  const file = join(await tempDir(t), 'locks.jsonl');
  const clock = { now: Date.now() };
  const opts = { ...limits, orphanGrace: 60, now: () => clock.now };
  const b = await LockManager.open(file, silentLogger, opts);
  await appendFile(file, added('/killed', `${deadPid()} ${hostname()} 0a0b0c`, clock.now + 600_000));
  await b.sync();
  assert.equal(b.covering('/killed').length, 1, 'b finds the lock orphaned, and notes when in the journal');
  await b.sync();
  clock.now += 40_000;
  const c = await LockManager.open(file, silentLogger, opts);
  assert.equal(c.covering('/killed').length, 1);
  clock.now += 20_000;
  assert.deepEqual(c.covering('/killed'), [], 'a server started later ends the grace with b, not a minute after its own look');
  assert.deepEqual(b.covering('/killed'), []);
  await Promise.all([b.close(), c.close()]);
});

test('an orphan never outlives its own timeout, however long the grace', async (t) => {
  const file = join(await tempDir(t), 'locks.jsonl');
  const clock = { now: Date.now() };
  const a = await LockManager.open(file, silentLogger, { ...limits, orphanGrace: 3600, now: () => clock.now });
  const l = await a.create(req('/a', 'exclusive', 0, [30]));
  await a.close();
  const b = await LockManager.open(file, silentLogger, { ...limits, orphanGrace: 3600, now: () => clock.now });
  assert.ok(b.get(l.token));
  clock.now += 30_000;
  assert.equal(b.get(l.token), undefined);
  await b.close();
});

test('a read-only server sees the locks of the others', async (t) => {
  const file = join(await tempDir(t), 'locks.jsonl');
  const reader = await LockManager.open(file, silentLogger, limits, { readOnly: true });
  const w = await LockManager.open(file, silentLogger, limits);
  const l = await w.create(req('/x', 'shared', 'infinity'));
  await reader.sync();
  assert.deepEqual(reader.covering('/x/y').map((x) => x.token), [l.token]);
  await Promise.all([reader.close(), w.close()]);
});

test('the journal is removed on close once no lock is left in it, and kept while one is', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'locks.jsonl');
  const m = await LockManager.open(file, silentLogger, limits);
  await m.remove((await m.create(req('/done'))).token);
  await m.close();
  assert.deepEqual(await readdir(dir), []);
  const held = await LockManager.open(file, silentLogger, limits);
  const l = await held.create(req('/held'));
  await held.close();
  const again = await LockManager.open(file, silentLogger, limits);
  assert.equal(again.get(l.token)?.path, '/held', 'a lock its server handed over on close stays in the journal');
  await again.close();
});

test('the journal is compacted: a long day of LOCK and UNLOCK leaves a short file', async (t) => {
  const file = join(await tempDir(t), 'locks.jsonl');
  const m = await LockManager.open(file, silentLogger, limits);
  const held = await m.create(req('/held'));
  for (let i = 0; i < 520; i++) await m.remove((await m.create(req(`/f${i}`))).token);
  const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
  assert.ok(lines.length < 100, `${lines.length} lines`);
  await m.close();
  const again = await LockManager.open(file, silentLogger, limits);
  assert.deepEqual([...again.covering('/held')].map((l) => l.token), [held.token], 'only the lock still held when it closed is left');
  assert.equal(again.size, 1);
  await again.close();
});

/** A lock operation as the LOCK, UNLOCK, DELETE and MOVE methods make them, or time passing. */
type LockStep =
  | { op: 'create'; path: string; depth: 0 | 'infinity'; scope: 'exclusive' | 'shared'; seconds: number }
  | { op: 'refresh' | 'remove'; pick: number; seconds: number }
  | { op: 'removeWithin'; path: string }
  | { op: 'wait'; ms: number };

test('property: random locking, refreshing, unlocking and waiting always agree with a model of RFC 4918 locks', async () => {
  const paths = ['/a', '/a/b', '/a/b/c', '/ab', '/c'] as const;
  const path = fc.constantFrom(...paths);
  const step: fc.Arbitrary<LockStep> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('create' as const), path, depth: fc.constantFrom(0 as const, 'infinity' as const), scope: fc.constantFrom('exclusive' as const, 'shared' as const), seconds: fc.integer({ min: 1, max: 20 }) }) },
    fc.record({ op: fc.constantFrom('refresh' as const, 'remove' as const), pick: fc.nat(), seconds: fc.integer({ min: 1, max: 20 }) }),
    fc.record({ op: fc.constant('removeWithin' as const), path }),
    // Never a whole number of seconds: no lock ends exactly at a step, where "expired" would be a matter of definition.
    fc.integer({ min: 0, max: 15 }).map((s) => ({ op: 'wait' as const, ms: s * 1000 + 500 })),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), async (steps) => {
      const clock = { now: 1_000_000 };
      const maxLocks = 4;
      const m = await LockManager.open(null, silentLogger, { defaultTimeout: 100, maxTimeout: 1000, maxLocks, now: () => clock.now });
      const within = (p: string, root: string) => p === root || p.startsWith(`${root}/`);
      // Every lock ever granted, with when it ends; the live ones are those not removed whose end is still ahead.
      const model: { token: string; path: string; depth: 0 | 'infinity'; scope: 'exclusive' | 'shared'; ends: number; removed: boolean }[] = [];
      const live = () => model.filter((l) => !l.removed && l.ends > clock.now);
      for (const s of steps) {
        if (s.op === 'wait') clock.now += s.ms;
        else if (s.op === 'create') {
          const touched = live().filter((l) => l.path === s.path || (l.depth === 'infinity' && within(s.path, l.path)) || (s.depth === 'infinity' && within(l.path, s.path)));
          const want = touched.some((l) => s.scope === 'exclusive' || l.scope === 'exclusive') ? 423 : live().length >= maxLocks ? 503 : 0;
          let got = 0;
          try {
            const lock = await m.create({ path: s.path, depth: s.depth, scope: s.scope, owner: null, timeouts: [s.seconds] });
            model.push({ token: lock.token, path: s.path, depth: s.depth, scope: s.scope, ends: clock.now + s.seconds * 1000, removed: false });
          } catch (err) {
            got = (err as DavError).status;
          }
          assert.equal(got, want, `LOCK ${JSON.stringify(s)}`);
        } else if (s.op === 'removeWithin') {
          await m.removeWithin(s.path);
          for (const l of model) if (within(l.path, s.path)) l.removed = true;
        } else {
          // Mostly a lock that exists (live or not); sometimes one never granted.
          const target = model[s.pick % (model.length + 1)];
          const token = target?.token ?? 'urn:uuid:00000000-0000-0000-0000-000000000000';
          const isLive = target !== undefined && live().includes(target);
          if (s.op === 'remove') {
            assert.equal(await m.remove(token), isLive, 'UNLOCK');
            if (target) target.removed = true;
          } else {
            assert.equal(await status(m.refresh(token, [s.seconds])), isLive ? 0 : 412, 'refresh');
            if (isLive && target) target.ends = clock.now + s.seconds * 1000;
          }
        }
        const seen = (p: string) => m.at(p).map((l) => `${l.token} ${l.scope} ${l.depth} ${m.remaining(l)}`).sort();
        const expected = (p: string) => live().filter((l) => l.path === p).map((l) => `${l.token} ${l.scope} ${l.depth} ${Math.ceil((l.ends - clock.now) / 1000)}`).sort();
        for (const p of paths) assert.deepEqual(seen(p), expected(p), `locks at ${p} after ${JSON.stringify(s)}`);
        assert.equal(m.size, live().length);
      }
      await m.close();
    }),
    { numRuns: 300 },
  );
});
