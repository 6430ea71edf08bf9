import test from 'node:test';
import assert from 'node:assert/strict';
import { MuxError } from '../../../mux/index.js';
import { SpicedavError, hasCode } from '../../../src/errors.js';

test('MuxError is a SpicedavError with a stable code, its own name and the cause', () => {
  const cause = new Error('socket reset');
  const err = new MuxError('MUX_ERR_TRANSPORT_CLOSED', 'the mux transport failed', { cause });
  assert.ok(err instanceof SpicedavError);
  assert.equal(err.name, 'MuxError');
  assert.equal(err.code, 'MUX_ERR_TRANSPORT_CLOSED');
  assert.equal(err.cause, cause);
  assert.ok(hasCode(err, 'MUX_ERR_TRANSPORT_CLOSED'));
});
