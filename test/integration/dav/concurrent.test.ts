/**
 * Random batches of requests run all at once, mixed with changes made on the host behind the server's back, on a
 * namespace small enough that they collide: a PUT into a folder being deleted, a MOVE over a file being read, a
 * listing of a folder being moved away. Whatever the interleaving, every answer is deliberate (never 500 or 503),
 * a GET returns one whole version of a file (never a mix or a part), no upload leaves a temporary file behind, and
 * once the batch is over a listing shows exactly what is on disk. With file calls inline and on the thread pool,
 * which interleave differently.
 *
 * Locks join in: LOCK and UNLOCK in the batches, and writes with or without every known token. A lock that lived
 * through a whole batch protected what it covers from every write without its token; no lock ends but by UNLOCK
 * or a write that carried its token; and no two live locks conflict.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { request, startServer, type Harness, type Reply, type RequestOptions } from './harness.js';
import { DavServer } from '../../../dav/index.js';

const FILES = ['/a', '/b', '/d/a', '/d/b', '/e/f/a'];
const DIRS = ['/d/', '/e/', '/e/f/'];
const ANY = [...FILES, ...DIRS, '/'];

const file = fc.constantFrom(...FILES);
const dir = fc.constantFrom(...DIRS);
const size = fc.integer({ min: 0, max: 200_000 });
/** Whether a write submits every lock token known when its batch began. */
const tokens = fc.boolean();
const operation = fc.oneof(
  fc.record({ op: fc.constant('PUT' as const), path: file, size, tokens }),
  fc.record({ op: fc.constant('GET' as const), path: file }),
  fc.record({ op: fc.constant('DELETE' as const), path: fc.constantFrom(...ANY.filter((p) => p !== '/')), tokens }),
  fc.record({ op: fc.constant('MKCOL' as const), path: dir, tokens }),
  fc.record({ op: fc.constantFrom('COPY' as const, 'MOVE' as const), path: fc.constantFrom(...ANY.filter((p) => p !== '/')), to: fc.constantFrom(...FILES, ...DIRS), overwrite: fc.boolean(), tokens }),
  fc.record({ op: fc.constant('PROPFIND' as const), path: fc.constantFrom(...DIRS, '/'), depth: fc.constantFrom('0', '1', 'infinity') }),
  fc.record({ op: fc.constant('PROPPATCH' as const), path: file, tokens }),
  fc.record({ op: fc.constant('LOCK' as const), path: fc.constantFrom(...ANY), scope: fc.constantFrom('exclusive' as const, 'shared' as const), depth: fc.constantFrom('0' as const, 'infinity' as const), tokens }),
  // One of the locks live when the batch began, released at its root or (409) elsewhere.
  fc.record({ op: fc.constant('UNLOCK' as const), pick: fc.nat(), path: fc.option(fc.constantFrom(...ANY)) }),
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

/** A lock as the test knows it: where it was asked for, its root (no trailing slash), depth and scope. */
interface KnownLock {
  token: string;
  at: string;
  root: string;
  depth: '0' | 'infinity';
  scope: 'exclusive' | 'shared';
}

const bare = (p: string) => (p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p);
const parentOf = (p: string) => bare(p).slice(0, bare(p).lastIndexOf('/')) || '/';
const below = (p: string, root: string) => (root === '/' ? p !== '/' : p.startsWith(`${root}/`));
/** The lock applies to `p`: it is rooted there, or at depth infinity above it. */
const covers = (l: KnownLock, p: string) => l.root === bare(p) || (l.depth === 'infinity' && below(bare(p), l.root));
/** The lock is rooted at `p` or below it: a DELETE or MOVE of `p` takes it away. */
const inTree = (l: KnownLock, p: string) => l.root === bare(p) || below(l.root, bare(p));

/** What a successful write changed: one resource, a resource and everything below it, or a collection's members. */
type Change = { self: string } | { tree: string } | { members: string };
/** RFC 4918 §7: the lock forbids the change to anyone without its token. */
const forbids = (l: KnownLock, c: Change) => ('self' in c ? covers(l, c.self) : 'tree' in c ? covers(l, c.tree) || inTree(l, c.tree) : covers(l, c.members));

/** What an operation that got `status` changed; only whole successes count (a 207 DELETE or COPY did a part). */
function changes(o: Operation, status: number): Change[] {
  switch (o.op) {
    case 'PUT':
      return status === 201 ? [{ self: o.path }, { members: parentOf(o.path) }] : status === 204 ? [{ self: o.path }] : [];
    case 'MKCOL':
      return status === 201 ? [{ self: o.path }, { members: parentOf(o.path) }] : [];
    case 'DELETE':
      return status === 204 ? [{ tree: o.path }, { members: parentOf(o.path) }] : [];
    case 'MOVE':
    case 'COPY': {
      if (status !== 201 && status !== 204) return [];
      const to: Change[] = [{ tree: o.to }, { members: parentOf(o.to) }];
      return o.op === 'MOVE' ? [{ tree: o.path }, { members: parentOf(o.path) }, ...to] : to;
    }
    case 'PROPPATCH':
      return status === 207 ? [{ self: o.path }] : [];
    case 'LOCK':
      // A LOCK on an unmapped URL creates an empty file (RFC 4918 §7.3).
      return status === 201 ? [{ members: parentOf(o.path) }] : [];
    default:
      return [];
  }
}

/** Runs batches against one server; `versions` knows every content ever written, by its first line. */
class Workload {
  readonly versions = new Map<string, Buffer>([['', Buffer.alloc(0)]]); // a LOCK on an unmapped URL writes ""
  /** The locks live after the last batch. */
  locks: KnownLock[] = [];
  #next = 0;

  #turn = 0;

  /** `ports`: the servers of the folder, which take the requests in turn. */
  constructor(
    readonly h: Harness,
    readonly ports: number[] = [h.port],
  ) {}

  req(method: string, path: string, o?: RequestOptions): Promise<Reply> {
    return request(this.ports[this.#turn++ % this.ports.length] as number, method, path, o);
  }

  /** A new content: a unique first line, then filler, so that a part or a mix of two is told from a whole. */
  content(size: number): Buffer {
    const head = `version ${this.#next++}\n`;
    const body = Buffer.alloc(head.length + size, `${head.trim()} `);
    body.write(head);
    this.versions.set(head, body);
    return body;
  }

  /** Runs a batch at once, then checks the locks; returns what went wrong. */
  async batch(ops: Operation[]): Promise<string[]> {
    const before = this.locks;
    const granted: KnownLock[] = [];
    const ended = new Set<string>(); // tokens an UNLOCK or a write with tokens may have ended
    const problems: string[] = [];
    const tokenless: [Operation, number][] = [];
    await Promise.all(
      ops.map(async (o) => {
        const r = await this.run(o, before);
        if (typeof r === 'string') return problems.push(r);
        if (r === null) return;
        const submitted = 'tokens' in o && o.tokens && before.length > 0;
        if (!submitted) tokenless.push([o, r.status]);
        if (o.op === 'UNLOCK') ended.add(this.#pick(before, o.pick).token);
        // DELETE drops the locks in its tree, even when a member stays (207); MOVE those in its source.
        const dropped = (o.op === 'DELETE' && (r.status === 204 || r.status === 207)) || (o.op === 'MOVE' && (r.status === 201 || r.status === 204));
        if (submitted && dropped) for (const l of before) if (inTree(l, o.path)) ended.add(l.token);
        if (o.op === 'LOCK' && (r.status === 200 || r.status === 201)) {
          const token = /<([^>]+)>/.exec(String(r.headers['lock-token']))?.[1];
          if (token === undefined) return problems.push(`LOCK ${o.path}: ${r.status} without a Lock-Token`);
          granted.push({ token, at: o.path, root: bare(o.path), depth: o.depth, scope: o.scope });
        }
      }),
    );
    // Which locks live now: a refresh with the token succeeds (200) or finds none (412).
    const live: KnownLock[] = [];
    for (const l of [...before, ...granted]) {
      const r = await this.req('LOCK', l.at, { headers: { if: `(<${l.token}>)`, timeout: 'Second-3600' } });
      if (r.status === 200) live.push(l);
      else if (r.status !== 412) problems.push(`refresh of ${l.token} at ${l.at}: ${r.status}`);
    }
    this.locks = live;
    const kept = before.filter((l) => live.includes(l));
    for (const l of before) if (!kept.includes(l) && !ended.has(l.token)) problems.push(`lock on ${l.root} ended with no UNLOCK and no write with its token`);
    // A lock live before and after the batch was live throughout it: no write without its token got past it.
    for (const [o, status] of tokenless) {
      for (const c of changes(o, status)) {
        const l = kept.find((k) => forbids(k, c));
        if (l) problems.push(`${o.op} ${o.path}: ${status} without a token, changing ${JSON.stringify(c)} under the ${l.scope} depth-${l.depth} lock on ${l.root}`);
      }
    }
    for (const a of live) {
      for (const b of live) {
        if (a !== b && (covers(a, b.root) || covers(b, a.root)) && (a.scope === 'exclusive' || b.scope === 'exclusive')) {
          problems.push(`conflicting locks live at once: ${a.scope} on ${a.root} (depth ${a.depth}) and ${b.scope} on ${b.root} (depth ${b.depth})`);
        }
      }
    }
    return problems;
  }

  #pick(locks: KnownLock[], n: number): KnownLock {
    return locks[n % locks.length] as KnownLock;
  }

  /** Runs one operation; returns what went wrong, the reply to judge, or null (a host change, a skipped UNLOCK). */
  async run(o: Operation, locks: KnownLock[]): Promise<string | Reply | null> {
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
    // Every token known, and a list that always holds (Not a token no lock has), so the If header never fails.
    const headers: Record<string, string> = 'tokens' in o && o.tokens && locks.length > 0 ? { if: `${locks.map((l) => `(<${l.token}>)`).join(' ')} (Not <DAV:no-lock>)` } : {};
    let reply;
    switch (o.op) {
      case 'PUT':
        reply = await this.req('PUT', o.path, { headers, body: this.content(o.size) });
        break;
      case 'COPY':
      case 'MOVE':
        reply = await this.req(o.op, o.path, { headers: { ...headers, destination: o.to, overwrite: o.overwrite ? 'T' : 'F', depth: 'infinity' } });
        break;
      case 'PROPFIND':
        reply = await this.req('PROPFIND', o.path, { headers: { depth: o.depth } });
        if (reply.status === 207 && !/<\/D:multistatus>\s*$/.test(reply.body)) return `PROPFIND ${o.path}: a multistatus cut short`;
        break;
      case 'PROPPATCH':
        reply = await this.req('PROPPATCH', o.path, {
          headers,
          body: `<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:n xmlns:x="urn:t">${this.#next++}</x:n></D:prop></D:set></D:propertyupdate>`,
        });
        break;
      case 'LOCK':
        reply = await this.req('LOCK', o.path, {
          headers: { ...headers, depth: o.depth, timeout: 'Second-3600' },
          body: `<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:${o.scope}/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`,
        });
        break;
      case 'UNLOCK': {
        if (locks.length === 0) return null;
        const l = this.#pick(locks, o.pick);
        reply = await this.req('UNLOCK', o.path ?? l.at, { headers: { 'lock-token': `<${l.token}>` } });
        break;
      }
      default:
        reply = await this.req(o.op, o.path, { headers });
    }
    if (reply.status === 500 || reply.status === 503) return `${o.op} ${o.path}: ${reply.status} ${reply.body.slice(0, 300)}`;
    if (o.op === 'GET' && reply.status === 200 && !String(reply.headers['content-type']).startsWith('text/html')) {
      const head = reply.raw.subarray(0, reply.raw.indexOf(10) + 1).toString();
      const whole = this.versions.get(head);
      if (!whole?.equals(reply.raw)) return `GET ${o.path}: ${reply.raw.length} bytes starting "${head.trim()}" are not a version written whole`;
    }
    return reply;
  }
}

// Two servers over one folder are two VMs sharing it (or `serve` beside `share`): one set of locks between them.
for (const [inlineIo, servers] of [[true, 1], [false, 1], [true, 2]] as const) {
  test(`property: requests, locks and host changes at once get deliberate answers, whole files, no temporaries, a true listing, locks kept (${inlineIo ? 'inline' : 'thread-pool'} I/O${servers > 1 ? ', two servers' : ''})`, { timeout: 180_000 }, async (t) => {
    const h = await startServer(t, { inlineIo });
    const other = servers > 1 ? new DavServer({ root: h.root, stateDir: join(h.outside, 'state'), inlineIo }) : null;
    const w = new Workload(h, other ? [h.port, (await other.listen({ port: 0 })).port] : [h.port]);
    try {
      await assertProperty(h, w);
    } finally {
      await other?.close();
    }
  });
}

/** The property, on the share `h` serves, through the servers `w` takes turns with. */
async function assertProperty(h: Harness, w: Workload): Promise<void> {
  await fc.assert(
    fc.asyncProperty(fc.array(operation, { minLength: 2, maxLength: 12 }), async (batch) => {
      assert.deepEqual(await w.batch(batch), [], JSON.stringify({ batch, locks: w.locks }));
      const disk = (await onDisk(h.root)).sort();
      assert.deepEqual(disk.filter((p) => p.includes('.spicedav-')), [], 'temporary files left behind');
      const listing = await w.req('PROPFIND', '/', { headers: { depth: 'infinity' } });
      assert.equal(listing.status, 207);
      const listed = [...listing.body.matchAll(/<D:response>\s*<D:href>([^<]*)<\/D:href>/g)].map((m) => decodeURIComponent(m[1] as string)).filter((p) => p !== '/');
      assert.deepEqual(listed.sort(), disk, 'the listing after the batch is what is on disk');
    }),
    // The share carries over from batch to batch, so a shrunk batch would replay on another state: report, do not shrink.
    { numRuns: 150, endOnFailure: true, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) },
  );
}
