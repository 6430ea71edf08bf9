// npm run bench:probe -- create [DIR] | loop put|get|proppatch|lock URL [N] [RUNS] | floor DIR [PORT]
//
// The two probes behind the explanations in docs/performance.md (why small PUTs and small GETs land where they
// do), kept runnable. Figures, not targets.
//
// create DIR   what creating a 4 KiB file costs on DIR's file system, step by step: open(O_CREAT|O_EXCL),
//              write, close, rename (what a PUT does), 3,000 files, synchronous calls, µs per step.
// loop put|get|proppatch|lock URL [N] [RUNS]
//              N (default 2,000) sequential 4 KiB PUTs or GETs over one keep-alive connection, RUNS times
//              (default 4), ops/s per run: the spread between runs is the point. GET reads the files a PUT loop
//              wrote (`loop put` first, same URL); PROPPATCH gives each of them the properties Windows sets on a
//              copied file (Win32FileAttributes, stored, and a modification time, applied to the file); LOCK
//              locks each of them and unlocks it again (one op is the pair, as an editor's save makes them).
// floor DIR [PORT]
//              the floor for small GETs in Node: a bare node:http server (synchronous open/fstat/read/close, the
//              headers a WebDAV GET sends) serving DIR on 127.0.0.1:PORT (default 18081) until Ctrl-C; run
//              `loop get` against it and against spicedav over the same files, in the same minutes.
import fs from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

function create(dir: string): void {
  const d = fs.mkdtempSync(join(dir, 'spicedav-probe-'));
  const buf = Buffer.alloc(4096, 7);
  const t = { open: 0, write: 0, close: 0, rename: 0 };
  const n = 3000;
  try {
    for (let i = 0; i < n; i++) {
      let p = performance.now();
      const fd = fs.openSync(`${d}/.t${i}`, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o666);
      t.open += performance.now() - p;
      p = performance.now();
      fs.writeSync(fd, buf, 0, buf.length, 0);
      t.write += performance.now() - p;
      p = performance.now();
      fs.closeSync(fd);
      t.close += performance.now() - p;
      p = performance.now();
      fs.renameSync(`${d}/.t${i}`, `${d}/f${i}`);
      t.rename += performance.now() - p;
    }
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
  const us = (ms: number) => ((ms * 1000) / n).toFixed(1);
  console.log(`${n} files in ${dir}: open ${us(t.open)} µs, write ${us(t.write)} µs, close ${us(t.close)} µs, rename ${us(t.rename)} µs`);
}

/** What Windows' WebDAV redirector sends after copying a file in. */
const WIN32_PROPPATCH = Buffer.from(
  '<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>' +
    '<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes><Z:Win32LastModifiedTime>Sat, 21 Nov 2026 10:00:00 GMT</Z:Win32LastModifiedTime>' +
    '</D:prop></D:set></D:propertyupdate>',
);

const LOCKINFO = Buffer.from(
  '<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>',
);

async function loop(method: 'put' | 'get' | 'proppatch' | 'lock', base: URL, n: number, runs: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = Buffer.alloc(4096, 0x61);
  let token = '';
  const request = (verb: string, path: string, data?: Buffer, headers: http.OutgoingHttpHeaders = {}) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(new URL(path, base), { method: verb, agent, headers: { ...headers, ...(data ? { 'content-length': data.length } : {}) } }, (res) => {
        token = String(res.headers['lock-token'] ?? '');
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(data);
    });
  const lockAndUnlock = async (path: string) => {
    const status = await request('LOCK', path, LOCKINFO, { depth: '0', timeout: 'Second-600' });
    return status >= 300 ? status : request('UNLOCK', path, undefined, { 'lock-token': token });
  };
  await request('MKCOL', 'probe/');
  for (let run = 0; run < runs; run++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const path = `probe/f${i}.bin`;
      const status =
        method === 'put' ? await request('PUT', path, body) : method === 'get' ? await request('GET', path) : method === 'lock' ? await lockAndUnlock(path) : await request('PROPPATCH', path, WIN32_PROPPATCH);
      if (status >= 300) throw new Error(`${method.toUpperCase()} probe/f${i}.bin → ${status}`);
    }
    console.log(`${method.toUpperCase()} run ${run + 1}: ${(n / ((performance.now() - t0) / 1000)).toFixed(0)} ops/s`);
  }
  agent.destroy();
}

function floor(dir: string, port: number): void {
  http
    .createServer((req, res) => {
      try {
        const fd = fs.openSync(join(dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)), 'r');
        const st = fs.fstatSync(fd);
        const buf = Buffer.allocUnsafe(st.size);
        fs.readSync(fd, buf, 0, st.size, 0);
        fs.closeSync(fd);
        res.writeHead(200, { 'Content-Length': st.size, ETag: `"${st.ino}-${st.mtimeMs}"`, 'Last-Modified': st.mtime.toUTCString(), 'Content-Type': 'application/octet-stream' });
        res.end(buf);
      } catch {
        res.writeHead(404).end();
      }
    })
    .listen(port, '127.0.0.1', () => console.log(`bare node:http serving ${dir} on http://127.0.0.1:${port}/ (Ctrl-C stops)`));
}

const [what, a, b, c, d] = process.argv.slice(2);
if (what === 'create') create(a ?? tmpdir());
else if (what === 'floor' && a) floor(a, Number(b ?? 18081));
else if (what === 'loop' && (a === 'put' || a === 'get' || a === 'proppatch' || a === 'lock') && b) await loop(a, new URL(b.replace(/\/?$/, '/')), Number(c ?? 2000), Number(d ?? 4));
else {
  console.error('usage: probes create [DIR] | probes loop put|get|proppatch|lock URL [N] [RUNS] | probes floor DIR [PORT]');
  process.exit(2);
}
