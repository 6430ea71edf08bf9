import test from 'node:test';
import assert from 'node:assert/strict';
import { SpicedavError, hasCode } from '../../src/errors.js';

test('SpicedavError keeps a stable code, the subclass name and the cause', () => {
  class DemoError extends SpicedavError {}
  const cause = new Error('underlying');
  const err = new DemoError('DEMO_ERR_X', 'something failed', { cause });
  assert.equal(err.code, 'DEMO_ERR_X');
  assert.equal(err.name, 'DemoError');
  assert.equal(err.cause, cause);
  assert.ok(hasCode(err, 'DEMO_ERR_X'));
  assert.ok(!hasCode(err, 'OTHER'));
  assert.ok(!hasCode(null, 'DEMO_ERR_X'));
});
