/**
 * Two spicedav processes serving one folder (two VMs sharing ~/Public, or `serve` beside `share`) keep one set of
 * WebDAV properties and one set of locks: what one sets, the other shows; a restart of one loses nothing the other
 * writes; a file locked through one is locked through the other, and stays locked for its client through a restart.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { startCli, type RunningCli } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/tmp.js';

const NS = 'urn:example:tags';

const setProp = (name: string, value: string) =>
  `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:t="${NS}"><D:set><D:prop><t:${name}>${value}</t:${name}></D:prop></D:set></D:propertyupdate>`;

/** The value of t:NAME on PATH as the server at `url` reports it (null: not there). */
async function propOf(url: string, path: string, name: string): Promise<string | null> {
  const body = `<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:t="${NS}"><D:prop><t:${name}/></D:prop></D:propfind>`;
  const res = await fetch(url + path, { method: 'PROPFIND', headers: { Depth: '0', 'Content-Type': 'application/xml' }, body });
  assert.equal(res.status, 207);
  const xml = await res.text();
  // The server picks its own prefix for the namespace; a property it does not have comes back empty, with 404.
  const found = xml.match(new RegExp(`<(?:\\w+:)?${name} [^>]*>([^<]*)</(?:\\w+:)?${name}>[\\s\\S]*?HTTP/1.1 200`));
  return found ? found[1]! : null;
}

async function proppatch(url: string, path: string, name: string, value: string): Promise<void> {
  const res = await fetch(url + path, { method: 'PROPPATCH', headers: { 'Content-Type': 'application/xml' }, body: setProp(name, value) });
  assert.equal(res.status, 207);
  assert.match(await res.text(), /HTTP\/1.1 200/);
}

async function serve(t: Parameters<typeof startCli>[0], share: string, state: string): Promise<{ cli: RunningCli; url: string }> {
  const cli = startCli(t, ['serve', share, '--port', '0', '--state-dir', state]);
  const [, url] = await cli.waitFor(/at (http:\/\/127\.0\.0\.1:\d+\/)/);
  return { cli, url: url! };
}

test('two serve processes on one folder share its properties, and a restart of one loses nothing', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const share = join(dir, 'share');
  const state = join(dir, 'state');
  await mkdir(join(share, 'album'), { recursive: true });
  await writeFile(join(share, 'album', 'a.jpg'), 'a');
  const one = await serve(t, share, state);
  const two = await serve(t, share, state);

  await proppatch(one.url, 'album/a.jpg', 'rating', '5');
  assert.equal(await propOf(two.url, 'album/a.jpg', 'rating'), '5', 'set through one, seen through the other');
  await proppatch(two.url, 'album', 'cover', 'a.jpg');
  // MOVE through one: the properties of the whole tree go along, as the other process sees them.
  assert.equal((await fetch(`${one.url}album`, { method: 'MOVE', headers: { Destination: `${one.url}photos` } })).status, 201);
  assert.equal(await propOf(two.url, 'photos', 'cover'), 'a.jpg');
  assert.equal(await propOf(two.url, 'photos/a.jpg', 'rating'), '5');
  // COPY with Depth 0 through the other: the collection's own properties, as set through the first.
  await proppatch(one.url, 'photos', 'cover', 'b.jpg');
  assert.equal((await fetch(`${two.url}photos`, { method: 'COPY', headers: { Destination: `${two.url}empty-copy`, Depth: '0' } })).status, 201);
  assert.equal(await propOf(one.url, 'empty-copy', 'cover'), 'b.jpg');

  // One restarts (and compacts the journal on start) while the other goes on writing.
  assert.equal(await one.cli.stop('SIGTERM'), 0, one.cli.stderr);
  const again = await serve(t, share, state);
  await proppatch(two.url, 'photos/a.jpg', 'rating', '4');
  assert.equal(await propOf(again.url, 'photos/a.jpg', 'rating'), '4');
  assert.equal(await two.cli.stop('SIGTERM'), 0, two.cli.stderr);
  assert.equal(await again.cli.stop('SIGTERM'), 0, again.cli.stderr);

  const last = await serve(t, share, state);
  assert.equal(await propOf(last.url, 'photos/a.jpg', 'rating'), '4', 'written after the other process restarted');
  assert.equal(await propOf(last.url, 'photos', 'cover'), 'b.jpg');
  assert.equal(await propOf(last.url, 'empty-copy', 'cover'), 'b.jpg');
  assert.equal(await last.cli.stop('SIGTERM'), 0, last.cli.stderr);
  assert.equal(one.cli.stderr + two.cli.stderr + again.cli.stderr + last.cli.stderr, '', 'no warning on the way');
});

const lockinfo = '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>VM one</D:owner></D:lockinfo>';

/** PUT `body` to `url`, with the lock token when given; resolves with the status. */
async function put(url: string, body: string, token?: string): Promise<number> {
  const res = await fetch(url, { method: 'PUT', body, headers: token ? { If: `(<${token}>)` } : {} });
  await res.arrayBuffer();
  return res.status;
}

test('a file locked through one serve process is locked through the other, until it is unlocked, and through a restart of its server', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const share = join(dir, 'share');
  const state = join(dir, 'state');
  await mkdir(share);
  await writeFile(join(share, 'report.docx'), 'v1');
  const one = await serve(t, share, state);
  const two = await serve(t, share, state);

  const lock = async (url: string) => fetch(url + 'report.docx', { method: 'LOCK', headers: { 'Content-Type': 'application/xml', Timeout: 'Second-3600' }, body: lockinfo });
  const res = await lock(one.url);
  assert.equal(res.status, 200);
  const token = /^<(.+)>$/.exec(res.headers.get('lock-token') ?? '')?.[1];
  assert.ok(token);
  assert.equal(await put(two.url + 'report.docx', 'v2 from VM two'), 423, 'locked through the other process');
  assert.equal((await lock(two.url)).status, 423, 'no second exclusive lock through the other');
  const discovery = await fetch(two.url + 'report.docx', { method: 'PROPFIND', headers: { Depth: '0' }, body: '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>' });
  assert.match(await discovery.text(), new RegExp(`VM one[\\s\\S]*${token}`), 'lockdiscovery through the other names the lock');
  assert.equal(await put(one.url + 'report.docx', 'v2 from VM one', token), 204);
  assert.equal(await put(two.url + 'report.docx', 'v3 from VM two', token), 204, 'the token works through either');
  assert.equal((await fetch(two.url + 'report.docx', { method: 'UNLOCK', headers: { 'Lock-Token': `<${token}>` } })).status, 204);
  assert.equal(await put(one.url + 'report.docx', 'v4 from VM one'), 204, 'unlocked through the other');

  // A server killed while it holds a lock: the lock belongs to its client, which comes back through a restarted
  // server (or another one) with its token, while everyone else is still kept out.
  const again = await lock(one.url);
  assert.equal(again.status, 200);
  const held = /^<(.+)>$/.exec(again.headers.get('lock-token') ?? '')?.[1];
  assert.ok(held);
  await one.cli.stop('SIGKILL');
  await sleep(1_100); // past the once-a-second look for the holder: `two` has seen `one` is gone
  assert.equal(await put(two.url + 'report.docx', 'not the holder'), 423, 'the lock of a killed server still guards the file');
  const restarted = await serve(t, share, state);
  assert.equal(await put(restarted.url + 'report.docx', 'v5 saved after the restart', held), 204, 'its token works through the restarted server');
  assert.equal(await put(restarted.url + 'report.docx', 'not the holder'), 423);
  assert.equal(await readFile(join(share, 'report.docx'), 'utf8'), 'v5 saved after the restart');
  // A server that stops cleanly hands its locks over the same way.
  assert.equal(await restarted.cli.stop('SIGTERM'), 0, restarted.cli.stderr);
  assert.equal(await put(two.url + 'report.docx', 'not the holder'), 423);
  assert.equal((await fetch(two.url + 'report.docx', { method: 'UNLOCK', headers: { 'Lock-Token': `<${held}>` } })).status, 204);
  assert.equal(await put(two.url + 'report.docx', 'v6 once unlocked'), 204);
  assert.equal(await two.cli.stop('SIGTERM'), 0, two.cli.stderr);
  assert.equal(two.cli.stderr, '', 'no warning on the way');
});
