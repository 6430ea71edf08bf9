import test from 'node:test';
import assert from 'node:assert/strict';
import { LoginThrottle, sourceKey } from '../../../dav/auth/login-throttle.js';

/** One guess from `address`: admitted and failed, returning the wait it started; or the wait that refused it (negative). */
function guess(throttle: LoginThrottle, address: string): number {
  const wait = throttle.admit(address);
  return wait > 0 ? -wait : throttle.settle(address, true);
}

test('an address gets its free failures, then waits 1 s, 2 s, 4 s … up to the longest wait', () => {
  let now = 0;
  const throttle = new LoginThrottle({ free: 3, maxWaitMs: 5000, now: () => now });
  assert.deepEqual([guess(throttle, '10.0.0.1'), guess(throttle, '10.0.0.1'), guess(throttle, '10.0.0.1')], [0, 0, 0]);
  const waits: number[] = [];
  for (let i = 0; i < 5; i++) {
    const wait = guess(throttle, '10.0.0.1');
    waits.push(wait);
    assert.equal(guess(throttle, '10.0.0.1'), -wait, 'during the wait nothing is checked, and the refusal says how long is left');
    now += wait - 1;
    assert.equal(throttle.admit('10.0.0.1'), 1);
    now += 1;
  }
  assert.deepEqual(waits, [1000, 2000, 4000, 5000, 5000]);
  assert.equal(guess(throttle, '10.0.0.2'), 0, 'another address is not held back');
});

test('a right answer after the free failures is checked and starts no wait', () => {
  const throttle = new LoginThrottle({ free: 1, now: () => 0 });
  assert.equal(throttle.hasFailed('10.0.0.1'), false);
  assert.equal(guess(throttle, '10.0.0.1'), 0);
  assert.equal(throttle.hasFailed('10.0.0.1'), true);
  assert.equal(throttle.admit('10.0.0.1'), 0);
  assert.equal(throttle.settle('10.0.0.1', false), 0);
  assert.equal(throttle.admit('10.0.0.1'), 0);
  assert.equal(throttle.settle('10.0.0.1', true), 1000);
});

test('on probation, parallel guesses are checked one at a time', () => {
  const throttle = new LoginThrottle({ free: 2, now: () => 0 });
  assert.equal(throttle.admit('10.0.0.1'), 0);
  assert.equal(throttle.admit('10.0.0.1'), 0, 'with failures to spare, checks run side by side');
  throttle.settle('10.0.0.1', true);
  throttle.settle('10.0.0.1', true);
  assert.equal(throttle.admit('10.0.0.1'), 0);
  assert.equal(throttle.admit('10.0.0.1'), 1000, 'a second one waits for the first answer');
  assert.equal(throttle.settle('10.0.0.1', false), 0);
  assert.equal(throttle.admit('10.0.0.1'), 0);
});

test('an address is forgotten after a quiet spell, and memory is bounded by forgetting the least recent', () => {
  let now = 0;
  const throttle = new LoginThrottle({ free: 1, forgetMs: 60_000, maxSources: 3, now: () => now });
  guess(throttle, '10.0.0.1');
  assert.equal(guess(throttle, '10.0.0.1'), 1000);
  now += 59_999;
  assert.equal(guess(throttle, '10.0.0.1'), 2000, 'within the quiet spell the failures still count');
  now += 60_000;
  assert.equal(guess(throttle, '10.0.0.1'), 0, 'afresh');
  assert.equal(guess(throttle, '10.0.0.1'), 1000);
  // Three other addresses fail after it: it is the least recent and goes.
  now += 1000;
  for (const a of ['10.0.0.2', '10.0.0.3', '10.0.0.4']) guess(throttle, a);
  assert.equal(guess(throttle, '10.0.0.1'), 0);
  // A source forgotten while its check ran still has the failure counted.
  const bounded = new LoginThrottle({ free: 0, maxSources: 1, now: () => now });
  assert.equal(bounded.admit('10.0.0.1'), 0);
  assert.equal(bounded.admit('10.0.0.2'), 0);
  assert.equal(bounded.settle('10.0.0.1', true), 1000);
});

test('IPv6 addresses count per /64, IPv4-mapped ones as IPv4', () => {
  assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('::FFFF:192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:0db8:0001:0002::/64');
  assert.equal(sourceKey('2001:DB8:1:2:bbbb:cccc:dddd:eeee'), '2001:0db8:0001:0002::/64');
  assert.equal(sourceKey('2001:db8::1'), '2001:0db8:0000:0000::/64');
  assert.equal(sourceKey('fe80::1%eth0'), 'fe80:0000:0000:0000::/64');
  assert.equal(sourceKey('::1'), '0000:0000:0000:0000::/64');
  assert.equal(sourceKey('64:ff9b::192.0.2.7'), '0064:ff9b:0000:0000::/64');
  assert.equal(sourceKey('unknown'), 'unknown');
  assert.equal(sourceKey('1:2:3'), '1:2:3', 'not an address: counted as given');
  const throttle = new LoginThrottle({ free: 1, now: () => 0 });
  guess(throttle, '2001:db8:1:2::a');
  assert.equal(guess(throttle, '2001:db8:1:2::b'), 1000, 'a host that changes its interface identifier is the same source');
  assert.equal(guess(throttle, '2001:db8:1:3::a'), 0);
});
