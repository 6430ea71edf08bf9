import test from 'node:test';
import assert from 'node:assert/strict';
import { renderStatus, StatusDisplay, type StatusSnapshot } from '../../../src/cli/status.js';
import { formatBytes, formatDuration, progressBar } from '../../../src/cli/format.js';
import { PassThrough } from 'node:stream';

const base: StatusSnapshot = {
  title: 'sharing /srv/share with spice://127.0.0.1:5930',
  state: 'linked',
  connections: 2,
  bytesIn: 5_000_000,
  bytesOut: 12_000_000,
  transfers: [],
};

test('formats sizes, durations and bars the way the docs count (MB = 10^6)', () => {
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1_500_000), '1.5 MB');
  assert.equal(formatBytes(256_000_000), '256 MB');
  assert.equal(formatDuration(3725), '1h02m');
  assert.equal(formatDuration(65), '1m05s');
  assert.equal(formatDuration(42.4), '42s');
  assert.equal(formatDuration(0.5), '0.5s');
  assert.equal(formatDuration(3), '3s');
  assert.equal(formatDuration(9.96), '10s');
  assert.equal(formatDuration(0.01), '0s');
  assert.equal(progressBar(0.5, 10), '[#####.....]');
  assert.equal(progressBar(undefined, 4), '[????]');
  assert.equal(progressBar(2, 4), '[####]');
});

test('status block shows state, connections, rates and cumulative bytes', () => {
  const lines = renderStatus(base, 1_000_000, 20_000_000, Date.now());
  assert.equal(lines[0], base.title);
  assert.match(lines[1]!, /^linked · 2 connections · ↓ 20 MB\/s \(12 MB\) · ↑ 1.0 MB\/s \(5.0 MB\)$/);
  assert.equal(lines.length, 2);
});

test('large transfers get a progress line with size, rate and time left; small ones do not', () => {
  const now = Date.now();
  const s: StatusSnapshot = {
    ...base,
    transfers: [
      { method: 'PUT', path: '/big.iso', direction: 'in', bytes: 50_000_000, total: 100_000_000, startedAt: now - 5000 },
      { method: 'GET', path: '/small.txt', direction: 'out', bytes: 10, total: 100, startedAt: now },
    ],
  };
  const lines = renderStatus(s, 0, 0, now, 100);
  assert.equal(lines.length, 3);
  assert.match(lines[2]!, /^↑ PUT \/big\.iso \[########\.{8}\] 50 MB\/100 MB 10 MB\/s 5s left$/);
});

test('long paths are cut from the left and no line exceeds the width', () => {
  const now = Date.now();
  const path = '/' + 'very-long-directory-name/'.repeat(10) + 'file.bin';
  const lines = renderStatus({ ...base, transfers: [{ method: 'GET', path, direction: 'out', bytes: 2e6, startedAt: now - 1000 }] }, 0, 0, now, 60);
  for (const l of lines) assert.ok(l.length <= 60, `too wide: ${l}`);
  assert.match(lines[2]!, /…/);
  assert.match(lines[2]!, /file\.bin/);
});

test('without a terminal the display prints plain event lines and never redraws', () => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const display = new StatusDisplay({ stream: out, snapshot: () => base });
  assert.equal(display.interactive, false);
  display.start();
  display.event('guest attached');
  display.stop();
  assert.equal(text, 'guest attached\n');
});

test('on a terminal the block is redrawn in place with events above it', () => {
  const out = Object.assign(new PassThrough(), { isTTY: true, columns: 100 });
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const saved = process.env.TERM;
  process.env.TERM = 'xterm';
  const display = new StatusDisplay({ stream: out, snapshot: () => base });
  process.env.TERM = saved;
  assert.equal(display.interactive, true);
  display.start();
  display.event('guest attached');
  display.stop();
  // Drawn, cleared (cursor up 2 lines + clear), event, drawn again, final draw.
  assert.ok(text.includes('\x1b[2F\x1b[J'), 'the block is cleared before the event');
  assert.ok(text.indexOf('guest attached\n') > text.indexOf(base.title));
  assert.ok(text.lastIndexOf(base.title) > text.indexOf('guest attached'));
});
