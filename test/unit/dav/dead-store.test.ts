import test from 'node:test';
import assert from 'node:assert/strict';
import { access, appendFile, lstat, mkdir, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DeadPropStore, propKey, splitKey } from '../../../dav/props/dead-store.js';
import fc from 'fast-check';
import { silentLogger } from '../../../src/log.js';
import { mountExfat, mountTmpfs, tempDir, unmountTmpfs } from '../../helpers/tmp.js';
import { warningLog } from '../../helpers/log.js';

/** The pid of a process that has exited: a lock holder killed on this host. */
const deadPid = (): string => spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;

const prop = (ns: string, name: string, value: string) => ({ ns, name, xml: `<x:${name} xmlns:x="${ns}">${value}</x:${name}>` });

test('properties persist across reopen with exact namespaces and any Unicode', async (t) => {
  const file = join(await tempDir(t), 'state', 'props.jsonl');
  const s1 = await DeadPropStore.open(file, silentLogger);
  await s1.patch('/a', [prop('urn:a', 'p', '\u{10000}é'), prop('', 'q', '1')], []);
  await s1.patch('/a', [], [propKey('', 'q')]);
  await s1.close();
  const s2 = await DeadPropStore.open(file, silentLogger);
  assert.deepEqual([...(s2.get('/a') ?? [])], [[propKey('urn:a', 'p'), prop('urn:a', 'p', '\u{10000}é').xml]]);
  await s2.close();
});

test('tree operations: copy, move and remove take the subtree along', async (t) => {
  const file = join(await tempDir(t), 'p.jsonl');
  const s = await DeadPropStore.open(file, silentLogger);
  await s.patch('/d', [prop('u', 'a', '1')], []);
  await s.patch('/d/x', [prop('u', 'b', '2')], []);
  await s.patch('/dx', [prop('u', 'c', '3')], []);
  await s.copyTree('/d', '/e');
  assert.ok(s.get('/e/x')?.has(propKey('u', 'b')));
  assert.ok(s.get('/d/x'));
  await s.moveTree('/e', '/f');
  assert.equal(s.get('/e'), undefined);
  assert.ok(s.get('/f')?.has(propKey('u', 'a')));
  await s.removeTree('/d');
  assert.equal(s.get('/d'), undefined);
  assert.equal(s.get('/d/x'), undefined);
  assert.ok(s.get('/dx'), 'a sibling whose name starts alike is untouched');
  await s.close();
  const again = await DeadPropStore.open(file, silentLogger);
  assert.deepEqual([...(again.get('/f/x')?.keys() ?? [])], [propKey('u', 'b')]);
  assert.equal(again.get('/d/x'), undefined);
  await again.close();
});

test('a torn last journal line is skipped, the rest is replayed and the torn line cut off', async (t) => {
  const file = join(await tempDir(t), 'p.jsonl');
  const s = await DeadPropStore.open(file, silentLogger);
  await s.patch('/a', [prop('u', 'a', '1')], []);
  await s.close();
  await appendFile(file, '{"p":"/b","set":[["{u}b","<x');
  const r = await DeadPropStore.open(file, silentLogger);
  assert.ok(r.get('/a'));
  assert.equal(r.get('/b'), undefined);
  await r.close();
  assert.equal((await readFile(file, 'utf8')).trim().split('\n').length, 1);
});

test('an in-memory store (no file) works the same and bumps its generation', async () => {
  const s = await DeadPropStore.open(null, silentLogger);
  const g = s.generation;
  await s.patch('/a', [prop('u', 'a', '1')], []);
  assert.ok(s.generation > g);
  assert.ok(s.get('/a'));
  await s.close();
});

test('a full disk: the change fails whole, no torn line is left for the next one, and compaction failing is not fatal', async (t) => {
  const state = join(await tempDir(t), 'state');
  await mkdir(state);
  if (!mountTmpfs(t, state, '64k')) return;
  try {
    const { log, warnings } = warningLog();
    const file = join(state, 'props.jsonl');
    const s = await DeadPropStore.open(file, log);
    await s.patch('/kept', [prop('u', 'a', 'before')], []);
    // Fill the disk but for a few KiB, then a value larger than that: the write is short, then fails.
    await writeFile(join(state, 'filler'), Buffer.alloc(64 * 1024 - 8192));
    await assert.rejects(s.patch('/big', [prop('u', 'b', 'x'.repeat(20_000))], []), (e: Error & { code?: string; status?: number }) => e.code === 'DAV_ERR_PROPSTORE_FULL' && e.status === 507 && /no space/.test(e.message));
    assert.equal(s.get('/big'), undefined, 'not applied in memory either');
    await rm(join(state, 'filler'));
    await s.patch('/after', [prop('u', 'c', 'before')], []);
    await s.patch('/after', [prop('u', 'c', 'after')], []);
    await s.close();

    const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    assert.equal(lines.length, 3, 'three whole lines, nothing of the failed one');
    const again = await DeadPropStore.open(file, log);
    assert.deepEqual([...(again.get('/kept')?.keys() ?? [])], [propKey('u', 'a')]);
    assert.deepEqual([...(again.get('/after')?.keys() ?? [])], [propKey('u', 'c')]);
    assert.deepEqual(warnings, [], 'nothing torn to skip on replay');
    await again.patch('/after', [prop('u', 'c', 'after')], []);
    await again.close();

    // Opening compacts a journal with more lines than resources; with the disk full that fails, and the store
    // opens anyway on its whole journal.
    await writeFile(join(state, 'filler'), Buffer.alloc(64 * 1024 - 4096)).catch(() => {});
    const full = await DeadPropStore.open(file, log);
    assert.deepEqual([...(full.get('/after')?.keys() ?? [])], [propKey('u', 'c')]);
    assert.ok(warnings.some((w) => /compaction failed/.test(w)), warnings.join('; '));
    await full.close();
  } finally {
    unmountTmpfs(state);
  }
});

/** Two stores on one journal stand for two processes serving one folder (two VMs sharing ~/Public). */
test('two processes on one journal see each other\'s changes, in the same order', async (t) => {
  const file = join(await tempDir(t), 'p.jsonl');
  const a = await DeadPropStore.open(file, silentLogger);
  const b = await DeadPropStore.open(file, silentLogger);
  const reader = await DeadPropStore.open(file, silentLogger, { readOnly: true });
  await a.patch('/a', [prop('u', 'a', '1')], []);
  assert.equal(b.get('/a'), undefined, 'not seen before a refresh');
  await b.sync();
  assert.deepEqual([...(b.get('/a')?.keys() ?? [])], [propKey('u', 'a')]);
  // A tree operation decides from the journal as it is, not from what this process had seen.
  await a.patch('/a/x', [prop('u', 'x', '2')], []);
  await b.moveTree('/a', '/b');
  await a.sync();
  await reader.sync();
  for (const s of [a, b, reader]) {
    assert.equal(s.get('/a'), undefined);
    assert.deepEqual([...(s.get('/b/x')?.keys() ?? [])], [propKey('u', 'x')]);
  }
  const g = reader.generation;
  await reader.sync();
  assert.equal(reader.generation, g, 'nothing new: nothing applied');
  await Promise.all([a.close(), b.close(), reader.close()]);
});

test('a process that restarts (and compacts) does not lose what another one writes afterwards', async (t) => {
  const file = join(await tempDir(t), 'p.jsonl');
  const a = await DeadPropStore.open(file, silentLogger);
  const b = await DeadPropStore.open(file, silentLogger);
  await b.patch('/x', [prop('u', 'x', '1')], []);
  await b.patch('/x', [prop('u', 'x', '2')], []);
  await a.close();
  const a2 = await DeadPropStore.open(file, silentLogger); // two lines for one resource: compacted into a new file
  assert.equal((await readFile(file, 'utf8')).trim().split('\n').length, 1);
  await b.patch('/y', [prop('u', 'y', '1')], []);
  await a2.sync();
  assert.ok(a2.get('/y'), 'the other process wrote into the compacted journal');
  await Promise.all([a2.close(), b.close()]);
  const r = await DeadPropStore.open(file, silentLogger);
  assert.equal(r.get('/x')?.get(propKey('u', 'x')), prop('u', 'x', '2').xml);
  assert.ok(r.get('/y'));
  await r.close();
});

test('two writers at once, with compactions on the way: every change lands, none twice', async (t) => {
  const file = join(await tempDir(t), 'p.jsonl');
  const a = await DeadPropStore.open(file, silentLogger);
  // One process makes its calls inline (a local disk), the other in the thread pool (what a network disk gets).
  const b = await DeadPropStore.open(file, silentLogger, { inlineIo: false });
  // 1,400 lines for 10 resources: past the compaction threshold (1,000 lines, 4 × the resources) while both write.
  const writes = (s: DeadPropStore, who: string) => (async () => {
    for (let i = 0; i < 700; i++) await s.patch(`/${who}${i % 5}`, [prop('u', 'n', String(i))], []);
    await s.moveTree(`/${who}0`, `/${who}-moved`);
  })();
  await Promise.all([writes(a, 'a'), writes(b, 'b')]);
  await Promise.all([a.sync(), b.sync()]);
  const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean).length;
  assert.ok(lines < 1400, `compacted on the way (${lines} lines)`);
  const fresh = await DeadPropStore.open(file, silentLogger);
  for (const s of [a, b, fresh]) {
    for (const who of ['a', 'b']) {
      assert.equal(s.get(`/${who}0`), undefined);
      assert.equal(s.get(`/${who}-moved`)?.get(propKey('u', 'n')), prop('u', 'n', '695').xml);
      for (let k = 1; k < 5; k++) assert.equal(s.get(`/${who}${k}`)?.get(propKey('u', 'n')), prop('u', 'n', String(695 + k)).xml);
    }
  }
  await Promise.all([a.close(), b.close(), fresh.close()]);
});

test('the lock: an abandoned one is broken, a live holder is waited for and then answered 503', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'p.jsonl');
  const lock = `${file}.lock`;
  const s = await DeadPropStore.open(file, silentLogger, { lock: { waitMs: 300, staleMs: 60_000 } });
  // A holder killed while writing: its pid is gone on this host.
  await symlink(`${deadPid()} ${hostname()} 0`, lock);
  await s.patch('/a', [prop('u', 'a', '1')], []);
  assert.ok(s.get('/a'));
  await assert.rejects(lstat(lock), { code: 'ENOENT' }, 'released after the change');
  // A holder on another host sharing the state directory (here one that could not make links, so a lock file): it
  // cannot be asked, so only its age tells.
  await writeFile(lock, 'unknown-pid other-host 0\n');
  const started = Date.now();
  await assert.rejects(s.patch('/b', [prop('u', 'b', '1')], []), (e: Error & { code?: string; status?: number; retryAfter?: number }) => e.status === 503 && e.retryAfter === 5 && e.code === 'DAV_ERR_PROPSTORE_BUSY' && e.message.includes('other-host') && e.message.includes(lock));
  assert.ok(Date.now() - started >= 250, 'waited for it first');
  assert.equal(s.get('/b'), undefined);
  const old = new Date(Date.now() - 120_000);
  await utimes(lock, old, old);
  await s.patch('/b', [prop('u', 'b', '1')], []);
  assert.ok(s.get('/b'));
  await s.close();
});

test('a journal removed behind the server\'s back: its properties are gone, and the next change starts a new one', async (t) => {
  const file = join(await tempDir(t), 'state', 'p.jsonl');
  const s = await DeadPropStore.open(file, silentLogger);
  await s.patch('/a', [prop('u', 'a', '1')], []);
  await rm(join(file, '..'), { recursive: true });
  await s.sync();
  assert.equal(s.get('/a'), undefined);
  await s.patch('/b', [prop('u', 'b', '1')], []);
  await s.close();
  const again = await DeadPropStore.open(file, silentLogger);
  assert.deepEqual([...(again.get('/b')?.keys() ?? [])], [propKey('u', 'b')]);
  assert.equal(again.get('/a'), undefined);
  await again.close();
});

test('a journal that replays to nothing is removed on close, unless another process wrote to it meanwhile', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'p.jsonl');
  const s = await DeadPropStore.open(file, silentLogger);
  await s.patch('/a', [prop('u', 'a', '1')], []);
  await s.patch('/a', [], [propKey('u', 'a')]);
  await s.close();
  assert.deepEqual(await readdir(dir), [], 'neither the journal nor its lock file is left');

  const a = await DeadPropStore.open(file, silentLogger);
  const b = await DeadPropStore.open(file, silentLogger);
  await b.patch('/b', [prop('u', 'b', '1')], []);
  await a.close(); // a has not seen b's change: it must catch up before it decides
  const reader = await DeadPropStore.open(file, silentLogger, { readOnly: true });
  assert.deepEqual([...(reader.get('/b')?.keys() ?? [])], [propKey('u', 'b')]);

  await b.patch('/b', [], [propKey('u', 'b')]);
  await reader.close();
  await access(file); // a read-only process never removes it
  const passer = await DeadPropStore.open(file, silentLogger);
  await passer.close();
  await assert.rejects(access(file), /ENOENT/, 'empty, and closed by a writer: removed');
  // b is still open on the file removed: its next change makes a new one, which the next process replays.
  await b.patch('/c', [prop('u', 'c', '1')], []);
  const next = await DeadPropStore.open(file, silentLogger);
  assert.deepEqual([...(next.get('/c')?.keys() ?? [])], [propKey('u', 'c')]);
  await Promise.all([b.close(), next.close()]);
  await access(file);
});

test('a state directory without symbolic links (exFAT): the lock is a file, and it works the same', async (t) => {
  const fs = await mountExfat(t);
  if (!fs) return;
  try {
    const file = join(fs.dir, 'p.jsonl');
    const a = await DeadPropStore.open(file, silentLogger);
    const b = await DeadPropStore.open(file, silentLogger);
    await Promise.all([0, 1, 2].map((i) => a.patch(`/a${i}`, [prop('u', 'a', String(i))], [])).concat([0, 1, 2].map((i) => b.patch(`/b${i}`, [prop('u', 'b', String(i))], []))));
    await Promise.all([a.sync(), b.sync()]);
    for (const s of [a, b]) for (const p of ['/a0', '/a1', '/a2', '/b0', '/b1', '/b2']) assert.ok(s.get(p), p);
    // One left by a writer killed on this host is broken as a link would be.
    await writeFile(`${file}.lock`, `${deadPid()} ${hostname()} 0`);
    await a.moveTree('/b0', '/c');
    await assert.rejects(lstat(`${file}.lock`), { code: 'ENOENT' });
    await Promise.all([a.close(), b.close()]);
    const again = await DeadPropStore.open(file, silentLogger);
    assert.ok(again.get('/c') && !again.get('/b0'));
    await again.close();
  } finally {
    fs.unmount();
  }
});

/** A change to the store, as the server's methods make them. */
type Change =
  | { kind: 'patch'; path: string; set: [string, string][]; del: string[] }
  | { kind: 'copy' | 'move'; from: string; to: string }
  | { kind: 'remove'; path: string }
  | { kind: 'reopen' };

/** The properties a sequence of changes leaves, worked out from the methods' meaning alone. */
function modelApply(model: Map<string, Map<string, string>>, c: Change): void {
  const below = (p: string, root: string) => p === root || p.startsWith(`${root}/`);
  if (c.kind === 'patch') {
    const m = new Map(model.get(c.path));
    for (const k of c.del) m.delete(k);
    for (const [k, v] of c.set) m.set(k, v);
    if (m.size) model.set(c.path, m);
    else model.delete(c.path);
  } else if (c.kind === 'remove') {
    for (const p of [...model.keys()]) if (below(p, c.path)) model.delete(p);
  } else if (c.kind !== 'reopen') {
    const taken = [...model].filter(([p]) => below(p, c.from)).map(([p, m]) => [c.to + p.slice(c.from.length), new Map(m)] as const);
    for (const p of [...model.keys()]) if (below(p, c.to) || (c.kind === 'move' && below(p, c.from))) model.delete(p);
    for (const [p, m] of taken) model.set(p, m);
  }
}

/** `path key value` lines, sorted: what a store (asked at `paths`) or the model holds, in one comparable form. */
const lines = (entries: Iterable<[string, Iterable<[string, string]>]>) => [...entries].flatMap(([p, m]) => [...m].map(([k, v]) => `${p} ${k} ${v}`)).sort();
const contents = (s: DeadPropStore, paths: Iterable<string>) => lines([...paths].map((p) => [p, s.get(p) ?? []]));

test('property: two processes making random changes, with restarts, always agree with a model of the methods', async (t) => {
  const dir = await tempDir(t);
  const paths = ['/a', '/a/b', '/a/b/c', '/ab', '/c', '/c/a'] as const;
  const path = fc.constantFrom(...paths);
  const key = fc.constantFrom(propKey('urn:x', 'p'), propKey('', 'q'), propKey('DAV:', 'r'));
  const value = fc.constantFrom('<v>1</v>', '<v>\u{10000}</v>', '<v a="&quot;"/>', '<v>line&#13;\n</v>');
  const change: fc.Arbitrary<Change> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('patch' as const), path, set: fc.array(fc.tuple(key, value), { maxLength: 2 }), del: fc.array(key, { maxLength: 2 }) }) },
    // COPY and MOVE into their own subtree are refused by the methods before they reach the store.
    fc.record({ kind: fc.constantFrom('copy' as const, 'move' as const), from: path, to: path }).filter((c) => !c.to.startsWith(c.from) && !c.from.startsWith(c.to)),
    fc.record({ kind: fc.constant('remove' as const), path }),
    fc.constant({ kind: 'reopen' as const }),
  );
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.nat(1), change), { minLength: 1, maxLength: 25 }), async (steps) => {
      const file = join(dir, `p${run++}.jsonl`);
      // Every path a property may be at: the ones patched, and where copies and moves took them.
      const universe = new Set<string>(paths);
      const stores = [await DeadPropStore.open(file, silentLogger), await DeadPropStore.open(file, silentLogger)];
      const model = new Map<string, Map<string, string>>();
      try {
        for (const [who, c] of steps) {
          const s = stores[who] as DeadPropStore;
          if (c.kind === 'reopen') {
            await s.close();
            stores[who] = await DeadPropStore.open(file, silentLogger);
          } else if (c.kind === 'patch') await s.patch(c.path, c.set.map(([k, xml]) => ({ ...splitKey(k), xml })), c.del);
          else if (c.kind === 'copy') await s.copyTree(c.from, c.to);
          else if (c.kind === 'move') await s.moveTree(c.from, c.to);
          else if (c.kind === 'remove') await s.removeTree(c.path);
          if (c.kind === 'copy' || c.kind === 'move') {
            for (const p of [...universe]) if (p === c.from || p.startsWith(`${c.from}/`)) universe.add(c.to + p.slice(c.from.length));
          }
          modelApply(model, c);
          const want = lines(model);
          for (const other of stores) {
            await other.sync();
            assert.deepEqual(contents(other, universe), want);
          }
        }
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
      const fresh = await DeadPropStore.open(file, silentLogger);
      assert.deepEqual(contents(fresh, universe), lines(model), 'replayed from the journal');
      await fresh.close();
    }),
    { numRuns: 100 },
  );
});

test('a journal from before CRs were escaped gives its values back with the CR as a reference, not raw', async (t) => {
  const file = join(await tempDir(t), 'p.jsonl');
  await writeFile(file, `${JSON.stringify({ p: '/a', set: [['{urn:x}n', '<ns0:n xmlns:ns0="urn:x">line 1\r\nline 2</ns0:n>']] })}\n`);
  const s = await DeadPropStore.open(file, silentLogger);
  assert.equal(s.get('/a')?.get('{urn:x}n'), '<ns0:n xmlns:ns0="urn:x">line 1&#13;\nline 2</ns0:n>');
  await s.close();
});
