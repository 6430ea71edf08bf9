import test from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackHost } from '../../src/loopback.js';

test('isLoopbackHost: every spelling of this machine’s loopback, and nothing else', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '127.0.0.1.example.com', 'localhost.example', '::ffff:10.0.0.1', '1127.0.0.1', '']) assert.ok(!isLoopbackHost(h), h);
});
