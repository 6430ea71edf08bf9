import test from 'node:test';
import assert from 'node:assert/strict';
import { LockManager } from '../../../dav/locks.js';
import { DavError } from '../../../dav/errors.js';

function manager() {
  const clock = { now: 1_000_000 };
  const m = new LockManager({ defaultTimeout: 100, maxTimeout: 1000, maxLocks: 3, now: () => clock.now });
  return { m, clock };
}
const req = (path: string, scope: 'exclusive' | 'shared' = 'exclusive', depth: 0 | 'infinity' = 0, timeouts: number[] = []) => ({ path, scope, depth, owner: null, timeouts });
const status = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof DavError);
    return err.status;
  }
  return 0;
};

test('timeouts: the client wish capped, the default for none or Infinite', () => {
  const { m } = manager();
  assert.equal(m.create(req('/a', 'shared', 0, [50])).timeout, 50);
  assert.equal(m.create(req('/b', 'shared', 0, [5000])).timeout, 1000);
  assert.equal(m.create(req('/c', 'shared', 0, [Infinity, 20])).timeout, 100);
});

test('expired locks vanish: they block nobody and are not listed', () => {
  const { m, clock } = manager();
  const l = m.create(req('/a', 'exclusive', 'infinity', [10]));
  assert.equal(m.covering('/a/b').length, 1);
  assert.equal(m.remaining(l), 10);
  clock.now += 9_999;
  assert.equal(m.get(l.token)?.token, l.token);
  clock.now += 1;
  assert.equal(m.get(l.token), undefined);
  assert.equal(m.covering('/a/b').length, 0);
  assert.equal(m.size, 0);
  assert.doesNotThrow(() => m.create(req('/a')));
});

test('refresh extends a lock; an unknown token is 412', () => {
  const { m, clock } = manager();
  const l = m.create(req('/a', 'exclusive', 0, [10]));
  clock.now += 8_000;
  m.refresh(l.token, [10]);
  clock.now += 8_000;
  assert.ok(m.get(l.token));
  assert.equal(status(() => m.refresh('urn:uuid:nope', [])), 412);
});

test('conflicts: exclusive vs anything, shared with shared, depth infinity reaches descendants', () => {
  const { m } = manager();
  m.create(req('/s', 'shared'));
  assert.equal(status(() => m.create(req('/s', 'shared'))), 0);
  assert.equal(status(() => m.create(req('/s', 'exclusive'))), 423);
  const { m: m2 } = manager();
  m2.create(req('/d/e', 'exclusive'));
  assert.equal(status(() => m2.create(req('/d', 'exclusive', 'infinity'))), 423);
  assert.equal(status(() => m2.create(req('/d', 'exclusive', 0))), 0);
  const { m: m3 } = manager();
  m3.create(req('/p', 'exclusive', 'infinity'));
  assert.equal(status(() => m3.create(req('/p/q/r', 'shared'))), 423);
  assert.equal(status(() => m3.create(req('/pq', 'exclusive'))), 0);
});

test('covering, below, at and removeWithin', () => {
  const { m } = manager();
  const a = m.create(req('/a', 'shared', 'infinity'));
  const b = m.create(req('/a/b/c', 'shared', 0));
  assert.deepEqual(m.covering('/a/b/c').map((l) => l.token).sort(), [a.token, b.token].sort());
  assert.deepEqual(m.covering('/a/b/c/d').map((l) => l.token), [a.token]);
  assert.deepEqual(m.below('/a').map((l) => l.token), [b.token]);
  assert.deepEqual(m.at('/a/b/c').map((l) => l.token), [b.token]);
  m.removeWithin('/a/b');
  assert.equal(m.get(b.token), undefined);
  assert.ok(m.get(a.token));
  assert.ok(m.remove(a.token));
  assert.ok(!m.remove(a.token));
});

test('maxLocks bounds the table with 503', () => {
  const { m } = manager();
  for (const p of ['/1', '/2', '/3']) m.create(req(p));
  assert.equal(status(() => m.create(req('/4'))), 503);
});

test('tokens are unique urn:uuid URNs', () => {
  const { m } = manager();
  const t1 = m.create(req('/x', 'shared')).token;
  const t2 = m.create(req('/x', 'shared')).token;
  assert.match(t1, /^urn:uuid:[0-9a-f-]{36}$/);
  assert.notEqual(t1, t2);
});
