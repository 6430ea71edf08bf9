import test from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeadPropStore, propKey } from '../../../dav/props/dead-store.js';
import { silentLogger } from '../../../src/log.js';
import { mountTmpfs, tempDir, unmountTmpfs } from '../../helpers/tmp.js';
import { warningLog } from '../../helpers/log.js';

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

test('a torn last journal line is skipped, the rest is replayed and the journal compacted', async (t) => {
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
    await s.patch('/after', [prop('u', 'c', 'after')], []);
    await s.close();

    const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    assert.equal(lines.length, 2, 'two whole lines, nothing of the failed one');
    const again = await DeadPropStore.open(file, log);
    assert.deepEqual([...(again.get('/kept')?.keys() ?? [])], [propKey('u', 'a')]);
    assert.deepEqual([...(again.get('/after')?.keys() ?? [])], [propKey('u', 'c')]);
    assert.deepEqual(warnings, [], 'nothing torn to skip on replay');
    await again.close();

    // Opening compacts; with the disk full that fails, and the store opens anyway on its whole journal.
    await writeFile(join(state, 'filler'), Buffer.alloc(64 * 1024 - 4096)).catch(() => {});
    const full = await DeadPropStore.open(file, log);
    assert.deepEqual([...(full.get('/after')?.keys() ?? [])], [propKey('u', 'c')]);
    assert.ok(warnings.some((w) => /compaction failed/.test(w)), warnings.join('; '));
    await full.close();
  } finally {
    unmountTmpfs(state);
  }
});
