import test from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import fc from 'fast-check';
import { parseUrlPath, parentOf, nameOf, childOf, isWithin, hrefOf, Confinement, TEMP_NAME } from '../../../dav/paths.js';
import { createIo } from '../../../dav/storage/io.js';
import { DavError } from '../../../dav/errors.js';
import { silentLogger } from '../../../src/log.js';
import { tempDir } from '../../helpers/tmp.js';
import { addressableName } from '../../helpers/names.js';

const status = async (p: Promise<unknown> | (() => unknown)): Promise<number> => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(err instanceof DavError, String(err));
    return err.status;
  }
  return 0;
};

test('request paths are decoded and normalised', () => {
  assert.deepEqual(parseUrlPath('/'), { path: '/', trailingSlash: false });
  assert.deepEqual(parseUrlPath('//a///b/'), { path: '/a/b', trailingSlash: true });
  assert.deepEqual(parseUrlPath('/a%20b/%E2%82%AC?x=/../'), { path: '/a b/€', trailingSlash: false });
  assert.deepEqual(parseUrlPath('http://host:1/x/y'), { path: '/x/y', trailingSlash: false });
  assert.deepEqual(parseUrlPath('http://host:1'), { path: '/', trailingSlash: false });
  assert.deepEqual(parseUrlPath('/%2e%2e%2e'), { path: '/...', trailingSlash: false });
  assert.deepEqual(parseUrlPath('/é'), { path: '/é', trailingSlash: false });
});

test('an encoded backslash is a plain character of a name on POSIX hosts, refused on Windows', async () => {
  if (process.platform === 'win32') assert.equal(await status(() => parseUrlPath('/a%5cb')), 400);
  else assert.deepEqual(parseUrlPath('/a%5C..%5c..%5Cb/c'), { path: '/a\\..\\..\\b/c', trailingSlash: false });
});

test('request paths that could leave the share or confuse the host are 400', async () => {
  const bad = ['/..', '/a/../..', '/./a', '/%2e%2e/x', '/%2E%2E/x', '/.%2e/x', '/a/%2e', '/a%2fb', '/a%2Fb', '/a\\b', '/a%00b',
    '/%', '/%zz', '/%c0%ae%c0%ae/x', '/%ff', 'a/b', '*', '/a#frag', '/%C0%AF'];
  for (const p of bad) assert.equal(await status(() => parseUrlPath(p)), 400, p);
});

test('path helpers', () => {
  assert.equal(parentOf('/a/b'), '/a');
  assert.equal(parentOf('/a'), '/');
  assert.equal(parentOf('/'), '/');
  assert.equal(nameOf('/a/b c'), 'b c');
  assert.equal(childOf('/', 'x'), '/x');
  assert.equal(childOf('/a', 'x'), '/a/x');
  assert.ok(isWithin('/a/b', '/a'));
  assert.ok(isWithin('/a', '/a'));
  assert.ok(!isWithin('/ab', '/a'));
  assert.ok(isWithin('/x', '/'));
  assert.equal(hrefOf('/a b/€#?', false), '/a%20b/%E2%82%AC%23%3F');
  assert.equal(hrefOf('/d', true), '/d/');
  assert.equal(hrefOf('/', true), '/');
});

async function tree(t: test.TestContext) {
  const base = await tempDir(t);
  const root = join(base, 'share');
  await mkdir(join(root, 'dir'), { recursive: true });
  await mkdir(join(base, 'outside'));
  await writeFile(join(root, 'dir', 'f'), 'in');
  await writeFile(join(base, 'outside', 'secret'), 'out');
  await symlink('../outside', join(root, 'out-dir'));
  await symlink(join(base, 'outside', 'secret'), join(root, 'out-file'));
  await symlink('dir', join(root, 'in-dir'));
  await symlink('dir/f', join(root, 'in-file'));
  await symlink('nowhere', join(root, 'dangling'));
  return { base, root };
}

for (const inline of [true, false]) {
  const io = createIo({ enabled: inline, maxMs: 1000, cooldownMs: 0, log: silentLogger });

  test(`Confinement 'never' refuses every path through a symlink (${inline ? 'inline' : 'thread pool'} I/O)`, async (t) => {
    const { root } = await tree(t);
    const c = new Confinement(root, 'never', io);
    const f = await c.resolve('/dir/f');
    assert.deepEqual([f.target, f.entry, f.exists, f.parentIsDir, f.stats?.size], [join(c.root, 'dir/f'), join(c.root, 'dir/f'), true, true, 2]);
    assert.equal((await c.resolve('/')).target, c.root);
    assert.equal((await c.resolve('/dir/new')).exists, false);
    assert.equal((await c.resolve('/dir/new')).parentIsDir, true);
    assert.equal((await c.resolve('/nope/new')).parentIsDir, false);
    assert.equal((await c.resolve('/dir/f/under')).parentIsDir, false);
    for (const p of ['/out-dir', '/out-dir/secret', '/out-dir/new', '/out-file', '/in-dir', '/in-dir/f', '/in-file', '/dangling', '/in-dir/new']) {
      assert.equal(await status(c.resolve(p)), 403, p);
    }
  });

  test(`Confinement 'inside' follows links that stay inside only (${inline ? 'inline' : 'thread pool'} I/O)`, async (t) => {
    const { root } = await tree(t);
    const c = new Confinement(root, 'inside', io);
    const r = await c.resolve('/in-dir/f');
    assert.equal(r.target, join(c.root, 'dir/f'));
    assert.equal(r.entry, join(c.root, 'dir/f'));
    const l = await c.resolve('/in-file');
    assert.equal(l.target, join(c.root, 'dir/f'));
    assert.equal(l.stats?.isFile(), true, 'the stats are those of the target');
    assert.equal(l.entry, join(c.root, 'in-file'), 'DELETE/MOVE act on the link itself');
    for (const p of ['/out-dir', '/out-dir/secret', '/out-dir/new', '/out-file', '/dangling']) assert.equal(await status(c.resolve(p)), 403, p);
  });
}

test('Confinement refuses a root that does not exist', () => {
  assert.throws(() => new Confinement('/nonexistent/spicedav/root', 'never', createIo({ enabled: false, maxMs: 1, cooldownMs: 0, log: silentLogger })), /DAV_ERR_ROOT|cannot be opened/);
});

test('property: every path hrefOf writes parses back to itself, in origin and absolute form, with a query', () => {
  fc.assert(
    fc.property(fc.array(addressableName, { maxLength: 5 }), fc.boolean(), fc.boolean(), fc.string({ maxLength: 6 }), (names, collection, absolute, query) => {
      const path = '/' + names.join('/');
      const href = hrefOf(path, collection);
      const target = `${absolute ? 'http://host.example:8080' : ''}${href}${query ? `?${encodeURIComponent(query)}` : ''}`;
      assert.deepEqual(parseUrlPath(target), { path, trailingSlash: collection && path !== '/' });
    }),
    { numRuns: 500 },
  );
});

/** Pieces hostile request targets are made of: dots and slashes in every encoding, NUL, bad escapes, over-long UTF-8. */
const hostileFragment = fc.constantFrom(
  '/', '//', '.', '..', '%2e', '%2E', '%2e%2e', '%2f', '%2F', '%5c', '%5C', '\\', '%00', '%', '%zz', '%c0%ae', '%c0%af',
  '%e0%80%ae', '%ff', '%c3%a9', 'é', 'a', 'dir', '?', '#', ';', '.spicedav-0123456789abcdef.part', '%20', '~',
);

test('property: a target made of hostile pieces is refused or gives a normal path below the root', () => {
  fc.assert(
    fc.property(fc.boolean(), fc.array(hostileFragment, { maxLength: 12 }), (absolute, pieces) => {
      const target = `${absolute ? 'http://h' : ''}/${pieces.join('')}`;
      let path: string;
      try {
        path = parseUrlPath(target).path;
      } catch (err) {
        assert.ok(err instanceof DavError && (err.status === 400 || err.status === 403), `${target}: ${String(err)}`);
        return;
      }
      assert.equal(posix.normalize(path), path, target);
      assert.ok(path === '/' || !path.endsWith('/'), target);
      for (const seg of path === '/' ? [] : path.slice(1).split('/')) {
        assert.ok(seg !== '' && seg !== '.' && seg !== '..' && !seg.includes('\0') && !TEMP_NAME.test(seg), `${target} gave ${path}`);
      }
      assert.ok(posix.resolve('/srv/share', `.${path}`).startsWith('/srv/share'), target);
    }),
    { numRuns: 2000 },
  );
});

test('property: whatever the path and links, a resolution stays in the share; under "never" it crosses no link', async (t) => {
  const { base, root } = await tree(t);
  // More ways out and around: a link to the share's parent, one back to the share, one out from below, a loop.
  await symlink('..', join(root, 'up'));
  await symlink('..', join(root, 'dir', 'back'));
  await symlink('../../outside', join(root, 'dir', 'esc'));
  await symlink('loop', join(root, 'loop'));
  const io = createIo({ enabled: true, maxMs: 1000, cooldownMs: 0, log: silentLogger });
  const segment = fc.constantFrom('dir', 'f', 'out-dir', 'out-file', 'in-dir', 'in-file', 'dangling', 'up', 'back', 'esc', 'loop', 'secret', 'outside', 'share', 'new');
  /** The deepest part of `p` that exists, as written and as the kernel resolves it. */
  const existing = (p: string): { lexical: string; real: string } => {
    for (let q = p; ; q = dirname(q)) {
      try {
        return { lexical: q, real: realpathSync(q) };
      } catch {
        // not there (yet): its parent decides
      }
    }
  };
  for (const policy of ['never', 'inside'] as const) {
    const c = new Confinement(root, policy, io);
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 5 }), async (names) => {
        const path = '/' + names.join('/');
        let r: Awaited<ReturnType<Confinement['resolve']>>;
        try {
          r = await c.resolve(path);
        } catch (err) {
          assert.ok(err instanceof DavError, `${policy} ${path}: ${String(err)}`);
          return;
        }
        for (const p of [r.target, dirname(r.entry)]) {
          const { lexical, real } = existing(p);
          assert.ok(c.contains(real), `${policy} ${path} -> ${p} (${real}) is outside the share`);
          if (policy === 'never') assert.equal(real, lexical, `${policy} ${path} -> ${p} went through a link`);
        }
      }),
      { numRuns: 400 },
    );
  }
  assert.equal(await readFile(join(base, 'outside', 'secret'), 'utf8'), 'out');
});
