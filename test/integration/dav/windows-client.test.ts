/**
 * Windows guests reach the share through the WebClient service (the "mini-redirector"), the client most
 * spice-webdavd users have. It cannot run here, so this replays the requests it sends, in its order and with
 * its headers (Explorer's copy as traced in mar10/wsgidav issue 112; the Win32 PROPPATCH body as in 9001/copyparty
 * issue 910): a LOCK without Depth, the token in `If` on every write, the Win32 times set with PROPPATCH twice.
 * A server that answers any step with 423 or 403 is what users see as "the process cannot access the file" or
 * "another process has locked a portion of the file" (utmapp/UTM issue 6203).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, type Harness } from './harness.js';

const CLIENT = { 'user-agent': 'Microsoft-WebDAV-MiniRedir/10.0.22631', translate: 'f', host: 'localhost:9843' };
const LOCKINFO =
  '<?xml version="1.0" encoding="utf-8" ?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>' +
  '<D:locktype><D:write/></D:locktype><D:owner><D:href>WIN11\\user</D:href></D:owner></D:lockinfo>';

const win32Times = (created: string, modified: string, attributes = '00000020') =>
  '<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>' +
  `<Z:Win32CreationTime>${created}</Z:Win32CreationTime><Z:Win32LastAccessTime>${modified}</Z:Win32LastAccessTime>` +
  `<Z:Win32LastModifiedTime>${modified}</Z:Win32LastModifiedTime><Z:Win32FileAttributes>${attributes}</Z:Win32FileAttributes>` +
  '</D:prop></D:set></D:propertyupdate>';

/** A request as WebClient sends it, with the lock token in `If` when it holds one. */
function windows(h: Harness, method: string, path: string, o: { token?: string; body?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...CLIENT, ...o.headers };
  if (o.token) headers.if = `(<${o.token}>)`;
  return h.req(method, path, { headers, body: o.body });
}

async function lock(h: Harness, path: string): Promise<string> {
  const r = await windows(h, 'LOCK', path, { body: LOCKINFO, headers: { timeout: 'Second-3600', 'content-type': 'text/xml; charset="utf-8"' } });
  assert.equal(r.status, 200, r.body);
  const token = /^<(.+)>$/.exec(String(r.headers['lock-token']))?.[1];
  assert.ok(token, `a Lock-Token header: ${String(r.headers['lock-token'])}`);
  return token;
}

/** Every propstat of a PROPPATCH answer is 200: WebClient fails the whole copy on any other status. */
function allApplied(body: string): void {
  const statuses = [...body.matchAll(/<D:status>HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
  assert.ok(statuses.length > 0 && statuses.every((s) => s === '200'), body);
}

test('Windows Explorer copying a file in: every step succeeds, the dates land on the file, the lock ends', async (t) => {
  const h = await startServer(t);
  const created = 'Mon, 06 Jan 2025 08:00:00 GMT';
  const modified = 'Tue, 07 Jan 2025 09:30:00 GMT';
  const content = 'report, version 1\r\n'.repeat(500);

  assert.equal((await windows(h, 'PROPFIND', '/report.txt', { headers: { depth: '0' } })).status, 404);
  assert.equal((await windows(h, 'PUT', '/report.txt', { body: '' })).status, 201);
  const token = await lock(h, '/report.txt');
  allApplied((await windows(h, 'PROPPATCH', '/report.txt', { token, body: win32Times(created, modified) })).body);
  assert.equal((await windows(h, 'HEAD', '/report.txt', { token })).status, 200);
  assert.equal((await windows(h, 'PUT', '/report.txt', { token, body: content })).status, 204);
  allApplied((await windows(h, 'PROPPATCH', '/report.txt', { token, body: win32Times(created, modified) })).body);
  assert.equal((await windows(h, 'UNLOCK', '/report.txt', { headers: { 'lock-token': `<${token}>` } })).status, 204);

  assert.equal(await readFile(join(h.root, 'report.txt'), 'utf8'), content);
  assert.equal((await stat(join(h.root, 'report.txt'))).mtime.toUTCString(), modified, 'the copy keeps its date');
  assert.deepEqual(await readdir(h.root), ['report.txt'], 'no temporary left behind');
  // Unlocked: another client writes without a token.
  assert.equal((await h.req('PUT', '/report.txt', { body: 'next' })).status, 204);
});

test('Notepad saving over a file: LOCK, PUT, PROPPATCH, UNLOCK; writes without the token are refused while it holds the lock', async (t) => {
  const h = await startServer(t);
  await writeFile(join(h.root, 'notes.txt'), 'old text');
  const token = await lock(h, '/notes.txt');

  // Someone else (or the same client forgetting its token) is refused with 423, and nothing changes.
  const other = await h.req('PUT', '/notes.txt', { body: 'intruder' });
  assert.equal(other.status, 423);
  assert.match(other.body, /lock-token-submitted/);
  assert.equal((await h.req('PROPPATCH', '/notes.txt', { body: win32Times('Mon, 06 Jan 2025 08:00:00 GMT', 'Mon, 06 Jan 2025 08:00:00 GMT') })).status, 423);
  assert.equal(await readFile(join(h.root, 'notes.txt'), 'utf8'), 'old text');

  assert.equal((await windows(h, 'PUT', '/notes.txt', { token, body: 'new text' })).status, 204);
  allApplied((await windows(h, 'PROPPATCH', '/notes.txt', { token, body: win32Times('Mon, 06 Jan 2025 08:00:00 GMT', 'Wed, 08 Jan 2025 10:00:00 GMT') })).body);
  // A refresh, as WebClient sends while a save takes long: no body, the token in If.
  const refresh = await windows(h, 'LOCK', '/notes.txt', { token, headers: { timeout: 'Second-3600' } });
  assert.equal(refresh.status, 200, refresh.body);
  assert.equal((await windows(h, 'UNLOCK', '/notes.txt', { headers: { 'lock-token': `<${token}>` } })).status, 204);

  assert.equal(await readFile(join(h.root, 'notes.txt'), 'utf8'), 'new text');
  assert.equal((await stat(join(h.root, 'notes.txt'))).mtime.toUTCString(), 'Wed, 08 Jan 2025 10:00:00 GMT');
  // The next save locks again: the first lock is gone, not merely expired later.
  const again = await lock(h, '/notes.txt');
  assert.notEqual(again, token);
});
