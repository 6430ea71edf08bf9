// The library API in one runnable program: a folder served by DavServer, reached through the host-role mux,
// an in-memory "virtio port", the guest-role mux and the guest's loopback listener — the chain of a real VM,
// in one process. Run it with `node examples/api/in-process.mjs` after `npm run build`.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DavServer, Share, GuestProxy, createMemoryTransport } from 'spicedav';

const folder = await mkdtemp(join(tmpdir(), 'spicedav-example-'));
await writeFile(join(folder, 'hello.txt'), 'hello from the host\n');

// Host half: the WebDAV server for the folder, served over a transport (here in memory; in real use
// `new SpiceTransport({ host, port })` or `new QemuSocketTransport({ path })`).
const dav = new DavServer({ root: folder, stateDir: false });
const { transport, guestEnd } = createMemoryTransport();
const share = new Share({ dav, transport });
share.start();

// Guest half: what `spicedav guest` runs in the VM, here on any free loopback port.
const proxy = new GuestProxy({ device: guestEnd, port: 0, hosts: ['127.0.0.1'], mdns: false });
await proxy.start();
const url = `http://127.0.0.1:${proxy.addresses[0].port}`;

// A guest application: read a file, write one, list the folder.
console.log('GET', (await (await fetch(`${url}/hello.txt`)).text()).trim());
const put = await fetch(`${url}/from-guest.txt`, { method: 'PUT', body: 'written by the guest\n' });
console.log('PUT', put.status);
const list = await (await fetch(`${url}/`, { method: 'PROPFIND', headers: { Depth: '1' } })).text();
console.log('PROPFIND', [...list.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]).join(' '));
console.log('bytes through the mux:', share.stats.bytesIn, 'in,', share.stats.bytesOut, 'out');

await proxy.close();
await share.close();
await dav.close();
await rm(folder, { recursive: true });
