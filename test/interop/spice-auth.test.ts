import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireTool } from '../helpers/tools.js';
import { startQemu } from '../helpers/qemu.js';
import { tempDir } from '../helpers/tmp.js';
import { connectSpice } from '../../src/spice/index.js';
import { hasCode } from '../../src/errors.js';

test('QEMU SPICE password (password-secret=): right one links main and webdav, wrong and missing ones fail clearly', { timeout: 60_000 }, async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const vm = await startQemu(t, { password: 'hunter2' });
  const endpoint = { host: '127.0.0.1', port: vm.spicePort };

  const session = await connectSpice({ ...endpoint, password: 'hunter2' });
  const port = await session.openPort();
  assert.equal(port.name, 'org.spice-space.webdav.0');
  await session.close();

  await assert.rejects(connectSpice({ ...endpoint, password: 'hunter3' }), (e: unknown) => hasCode(e, 'SPICE_ERR_WRONG_PASSWORD'));
  await assert.rejects(connectSpice(endpoint), (e: unknown) => hasCode(e, 'SPICE_ERR_PERMISSION_DENIED') && /SPICE_PASSWORD/.test(String(e)));
  await assert.rejects(connectSpice({ ...endpoint, password: 'x'.repeat(61) }), (e: unknown) => hasCode(e, 'SPICE_ERR_PASSWORD_TOO_LONG'));
  // A refused link leaves no timer behind: a CLI that failed to link must exit at once, not after linkTimeoutMs.
  assert.ok(!process.getActiveResourcesInfo().includes('Timeout'), `timers left: ${process.getActiveResourcesInfo().join(', ')}`);
});

/** A CA and a server certificate for 127.0.0.1/localhost in QEMU's x509-dir layout, plus an unrelated CA. */
async function makeCerts(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t, 'spicedav-x509-');
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '2', '-subj', '/CN=spicedav test CA');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/O=spicedav-test/CN=localhost');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server-cert.pem', '-days', '2', '-extfile', 'ext.cnf');
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other-key.pem', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=other CA');
  return { dir, ca: join(dir, 'ca-cert.pem'), otherCa: join(dir, 'other-ca.pem') };
}

test('QEMU SPICE TLS (tls-port, x509-dir, tls-channel=main): right CA links, wrong CA is refused, NEED_SECURED retried on the TLS port', { timeout: 90_000 }, async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  if (!requireTool(t, 'openssl')) return;
  const certs = await makeCerts(t);
  const vm = await startQemu(t, { x509Dir: certs.dir, spiceExtra: 'tls-channel=main' });
  const host = '127.0.0.1';

  // TLS port only, CA given as a file; the host name check uses the certificate's IP SAN.
  const s1 = await connectSpice({ host, tlsPort: vm.tlsPort, tls: { caFile: certs.ca } });
  assert.equal(s1.secure, true);
  const port = await s1.openPort();
  assert.equal(port.secure, true, 'without a plain port every channel uses TLS');
  await s1.close();

  // CA as PEM text and an exact host subject.
  const s2 = await connectSpice({ host, tlsPort: vm.tlsPort, tls: { ca: readFileSync(certs.ca), hostSubject: 'O=spicedav-test,CN=localhost' } });
  await s2.close();
  await assert.rejects(
    connectSpice({ host, tlsPort: vm.tlsPort, tls: { caFile: certs.ca, hostSubject: 'CN=someone-else' } }),
    (e: unknown) => hasCode(e, 'SPICE_ERR_TLS'),
  );

  // A CA that did not sign the server certificate.
  await assert.rejects(
    connectSpice({ host, tlsPort: vm.tlsPort, tls: { caFile: certs.otherCa } }),
    (e: unknown) => hasCode(e, 'SPICE_ERR_TLS') && /--ca-file/.test(String(e)),
  );

  // The plain port answers NEED_SECURED for main: an error without a TLS port, a retry over TLS with one.
  await assert.rejects(connectSpice({ host, port: vm.spicePort }), (e: unknown) => hasCode(e, 'SPICE_ERR_TLS_REQUIRED'));
  const s3 = await connectSpice({ host, port: vm.spicePort, tlsPort: vm.tlsPort, tls: { caFile: certs.ca } });
  assert.equal(s3.secure, true);
  const plainPort = await s3.openPort();
  assert.equal(plainPort.secure, false, 'the webdav channel stays on the plain port: only main is TLS-only');
  await s3.close();
});
