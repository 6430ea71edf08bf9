import test from 'node:test';
import assert from 'node:assert/strict';
import { parseSpiceUri } from '../../../src/spice/uri.js';
import { hasCode } from '../../../src/errors.js';

test('SPICE URIs in the forms remote-viewer accepts', () => {
  assert.deepEqual(parseSpiceUri('spice://127.0.0.1:5930'), { host: '127.0.0.1', port: 5930 });
  assert.deepEqual(parseSpiceUri('spice+tls://vm.example:5931'), { host: 'vm.example', tlsPort: 5931 });
  assert.deepEqual(parseSpiceUri('spice://localhost?port=5900&tls-port=5901'), { host: 'localhost', port: 5900, tlsPort: 5901 });
  assert.deepEqual(parseSpiceUri('spice://[::1]:5930'), { host: '::1', port: 5930 });
});

test('not a SPICE URI, or no port: SPICE_ERR_INVALID_URI with the accepted forms', () => {
  for (const bad of ['http://127.0.0.1:5930', 'spice://127.0.0.1', '127.0.0.1:5930', 'spice://h:0', 'spice://h?port=x']) {
    assert.throws(() => parseSpiceUri(bad), (e: unknown) => hasCode(e, 'SPICE_ERR_INVALID_URI'), bad);
  }
});
