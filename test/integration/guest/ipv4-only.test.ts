import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { buildRoot } from '../../helpers/paths.js';
import { requireTool } from '../../helpers/tools.js';

// A network namespace whose loopback has no ::1 (IPv6 disabled on lo): the proxy must serve on 127.0.0.1 alone
// and say why, instead of failing to start.
const CHILD = `
const { GuestProxy } = await import(${JSON.stringify(join(buildRoot, 'src', 'guest', 'proxy.js'))});
const warnings = [];
const log = { error() {}, info() {}, debug() {}, warn: (o, m) => warnings.push(m), child() { return log; } };
const proxy = new GuestProxy({ device: '/dev/null', port: 0, mdns: false, log });
await proxy.start();
console.log(JSON.stringify({ addresses: proxy.addresses.map((a) => a.address), warnings }));
await proxy.close();
`;

test('without IPv6 on loopback the proxy listens on 127.0.0.1 alone, with a warning', (t) => {
  if (!requireTool(t, 'unshare', 'util-linux') || !requireTool(t, 'ip', 'iproute2') || !requireTool(t, 'sysctl', 'procps')) return;
  if (process.getuid?.() !== 0) return t.skip('needs root for a network namespace');
  const script = `ip link set lo up && sysctl -qw net.ipv6.conf.lo.disable_ipv6=1 && exec "$0" --input-type=module -e "$1"`;
  const r = spawnSync('unshare', ['-n', 'sh', '-c', script, process.execPath, CHILD], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { addresses: string[]; warnings: string[] };
  assert.deepEqual(out.addresses, ['127.0.0.1']);
  assert.ok(out.warnings.some((w) => /IPv6 loopback is not available/.test(w)), out.warnings.join('; '));
});
