/**
 * Random batches of requests run all at once, mixed with changes made on the host behind the server's back, on a
 * namespace small enough that they collide: a PUT into a folder being deleted, a MOVE over a file being read, a
 * listing of a folder being moved away. Whatever the interleaving, every answer is deliberate (never 500 or 503),
 * a GET returns one whole version of a file (never a mix or a part), no upload leaves a temporary file behind, and
 * once the batch is over a listing shows exactly what is on disk. With file calls inline and on the thread pool,
 * which interleave differently.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { startServer, type Harness } from './harness.js';

const FILES = ['/a', '/b', '/d/a', '/d/b', '/e/f/a'];
const DIRS = ['/d/', '/e/', '/e/f/'];
const ANY = [...FILES, ...DIRS, '/'];

const file = fc.constantFrom(...FILES);
const dir = fc.constantFrom(...DIRS);
const size = fc.integer({ min: 0, max: 200_000 });
const operation = fc.oneof(
  fc.record({ op: fc.constant('PUT' as const), path: file, size }),
  fc.record({ op: fc.constant('GET' as const), path: file }),
  fc.record({ op: fc.constant('DELETE' as const), path: fc.constantFrom(...ANY.filter((p) => p !== '/')) }),
  fc.record({ op: fc.constant('MKCOL' as const), path: dir }),
  fc.record({ op: fc.constantFrom('COPY' as const, 'MOVE' as const), path: fc.constantFrom(...ANY.filter((p) => p !== '/')), to: fc.constantFrom(...FILES, ...DIRS), overwrite: fc.boolean() }),
  fc.record({ op: fc.constant('PROPFIND' as const), path: fc.constantFrom(...DIRS, '/'), depth: fc.constantFrom('0', '1', 'infinity') }),
  fc.record({ op: fc.constant('PROPPATCH' as const), path: file }),
  // On the host: an editor's save (write beside, rename over), rm, rm -r, mkdir, mv.
  fc.record({ op: fc.constant('host-save' as const), path: file, size }),
  fc.record({ op: fc.constant('host-rm' as const), path: fc.constantFrom(...FILES, ...DIRS) }),
  fc.record({ op: fc.constant('host-mkdir' as const), path: dir }),
  fc.record({ op: fc.constant('host-mv' as const), path: fc.constantFrom(...FILES, ...DIRS), to: fc.constantFrom(...FILES, ...DIRS) }),
);
type Operation = typeof operation extends fc.Arbitrary<infer T> ? T : never;

/** Every file and folder below `root`, as DAV paths (folders with a trailing slash). */
async function onDisk(root: string, rel = '/'): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    const p = `${rel}${e.name}`;
    out.push(e.isDirectory() ? `${p}/` : p);
    if (e.isDirectory()) out.push(...(await onDisk(root, `${p}/`)));
  }
  return out;
}

/** Runs batches against one server; `versions` knows every content ever written, by its first line. */
class Workload {
  readonly versions = new Map<string, Buffer>();
  #next = 0;

  constructor(readonly h: Harness) {}

  /** A new content: a unique first line, then filler, so that a part or a mix of two is told from a whole. */
  content(size: number): Buffer {
    const head = `version ${this.#next++}\n`;
    const body = Buffer.alloc(head.length + size, `${head.trim()} `);
    body.write(head);
    this.versions.set(head, body);
    return body;
  }

  /** Runs one operation; returns what went wrong, or null. */
  async run(o: Operation): Promise<string | null> {
    const { h } = this;
    const disk = (p: string) => join(h.root, p);
    if (o.op.startsWith('host-')) {
      // The host's own changes fail as they may (the path is gone, a folder is not empty): that is not the server's doing.
      const quiet = (p: Promise<unknown>) => p.then(() => null, () => null);
      switch (o.op) {
        case 'host-save': {
          const tmp = join(h.outside, `save-${this.#next}`);
          await writeFile(tmp, this.content(o.size));
          return quiet(rename(tmp, disk(o.path)).catch(() => unlink(tmp)));
        }
        case 'host-rm':
          return quiet(o.path.endsWith('/') ? rm(disk(o.path), { recursive: true }) : unlink(disk(o.path)));
        case 'host-mkdir':
          return quiet(mkdir(disk(o.path)));
        case 'host-mv':
          return quiet(rename(disk(o.path), disk(o.to)));
      }
    }
    let reply;
    switch (o.op) {
      case 'PUT':
        reply = await h.req('PUT', o.path, { body: this.content(o.size) });
        break;
      case 'COPY':
      case 'MOVE':
        reply = await h.req(o.op, o.path, { headers: { destination: o.to, overwrite: o.overwrite ? 'T' : 'F', depth: 'infinity' } });
        break;
      case 'PROPFIND':
        reply = await h.req('PROPFIND', o.path, { headers: { depth: o.depth } });
        if (reply.status === 207 && !/<\/D:multistatus>\s*$/.test(reply.body)) return `PROPFIND ${o.path}: a multistatus cut short`;
        break;
      case 'PROPPATCH':
        reply = await h.req('PROPPATCH', o.path, {
          body: `<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:n xmlns:x="urn:t">${this.#next++}</x:n></D:prop></D:set></D:propertyupdate>`,
        });
        break;
      default:
        reply = await h.req(o.op, o.path);
    }
    if (reply.status === 500 || reply.status === 503) return `${o.op} ${o.path}: ${reply.status} ${reply.body.slice(0, 300)}`;
    if (o.op === 'GET' && reply.status === 200 && !String(reply.headers['content-type']).startsWith('text/html')) {
      const head = reply.raw.subarray(0, reply.raw.indexOf(10) + 1).toString();
      const whole = this.versions.get(head);
      if (!whole?.equals(reply.raw)) return `GET ${o.path}: ${reply.raw.length} bytes starting "${head.trim()}" are not a version written whole`;
    }
    return null;
  }
}

for (const inlineIo of [true, false]) {
  test(`property: requests and host changes at once get deliberate answers, whole files, no temporaries, a true listing (${inlineIo ? 'inline' : 'thread-pool'} I/O)`, { timeout: 180_000 }, async (t) => {
    const h = await startServer(t, { inlineIo });
    const w = new Workload(h);
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 2, maxLength: 12 }), async (batch) => {
        const problems = (await Promise.all(batch.map((o) => w.run(o)))).filter((p) => p !== null);
        assert.deepEqual(problems, [], JSON.stringify(batch));
        const disk = (await onDisk(h.root)).sort();
        assert.deepEqual(disk.filter((p) => p.includes('.spicedav-')), [], 'temporary files left behind');
        const listing = await h.req('PROPFIND', '/', { headers: { depth: 'infinity' } });
        assert.equal(listing.status, 207);
        const listed = [...listing.body.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => decodeURIComponent(m[1] as string)).filter((p) => p !== '/');
        assert.deepEqual(listed.sort(), disk, 'the listing after the batch is what is on disk');
      }),
      // The share carries over from batch to batch, so a shrunk batch would replay on another state: report, do not shrink.
      { numRuns: 150, endOnFailure: true },
    );
  });
}
