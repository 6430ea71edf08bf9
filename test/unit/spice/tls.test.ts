import test from 'node:test';
import assert from 'node:assert/strict';
import type { PeerCertificate } from 'node:tls';
import { checkHostSubject, parseHostSubject } from '../../../src/spice/tls.js';

test('host subject: comma-separated KEY=VALUE with backslash escapes', () => {
  assert.deepEqual(parseHostSubject('C=IL, L=Raanana,O=Red Hat\\, Inc.,CN=my server'), [
    ['C', 'IL'], ['L', 'Raanana'], ['O', 'Red Hat, Inc.'], ['CN', 'my server'],
  ]);
  assert.throws(() => parseHostSubject('CN'), TypeError);
});

test('host subject must match the certificate subject exactly, in any order', () => {
  const cert = { subject: { O: 'spicedav', CN: 'vm1' } } as unknown as PeerCertificate;
  assert.equal(checkHostSubject('CN=vm1,O=spicedav', cert), undefined);
  assert.ok(checkHostSubject('CN=vm1', cert) instanceof Error);
  assert.ok(checkHostSubject('CN=vm2,O=spicedav', cert) instanceof Error);
});
