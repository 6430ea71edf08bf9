import test from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '../../src/log.js';

/** A destination that keeps every line written to it. */
function recorder(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { stream, lines };
}

test('json format: one pino-compatible object a line, child bindings merged, levels below the threshold dropped', () => {
  const { stream, lines } = recorder();
  const log = createLogger({ level: 'info', format: 'json', destination: stream });
  const before = Date.now();
  log.child({ component: 'mux' }).child({ role: 'host' }).info({ id: 5n, bytes: 10 }, 'client opened');
  log.debug({ hidden: true }, 'not written');
  log.warn({}, 'plain');
  assert.equal(lines.length, 2);
  assert.ok(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')));
  const first = JSON.parse(lines[0] as string) as Record<string, unknown>;
  assert.deepEqual({ ...first, time: 0 }, { level: 30, time: 0, component: 'mux', role: 'host', id: '5', bytes: 10, msg: 'client opened' });
  assert.ok((first.time as number) >= before && (first.time as number) <= Date.now());
  assert.equal((JSON.parse(lines[1] as string) as { level: number }).level, 40);
});

test('json format: errors keep their name, message and code; a field that cannot be serialized does not lose the message', () => {
  const { stream, lines } = recorder();
  const log = createLogger({ level: 'debug', format: 'json', destination: stream });
  const err = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
  log.error({ err }, 'write failed');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  log.debug({ cyclic }, 'still here');
  const e = (JSON.parse(lines[0] as string) as { err: Record<string, unknown> }).err;
  assert.equal(e.type, 'Error');
  assert.equal(e.message, 'disk full');
  assert.equal(e.code, 'ENOSPC');
  assert.match(String(e.stack), /disk full/);
  const second = JSON.parse(lines[1] as string) as Record<string, unknown>;
  assert.equal(second.msg, 'still here');
  assert.equal(second.level, 20);
  assert.equal(second.logError, 'fields not serializable');
});

test('pretty format: time, level, component, message, then the fields', () => {
  const { stream, lines } = recorder();
  const log = createLogger({ level: 'warn', format: 'pretty', destination: stream });
  log.child({ component: 'dav' }).warn({ path: '/a b', n: 3, err: new Error('boom'), o: { x: 1 } }, 'slow');
  log.info({}, 'dropped');
  assert.equal(lines.length, 1);
  assert.match(lines[0] as string, /^\d\d:\d\d:\d\d WARN dav: slow path=\/a b n=3 err=boom o=\{"x":1\}\n$/);
});

test('pretty format: a field with control characters is quoted, so it cannot forge a line or drive the terminal', () => {
  const { stream, lines } = recorder();
  const log = createLogger({ level: 'warn', format: 'pretty', destination: stream });
  log.warn({ user: 'eve\n12:00:00 INFO fake\u001b[2J', path: '/a b' }, 'login failed');
  assert.equal(lines.length, 1);
  assert.equal((lines[0] as string).split('\n').length, 2, 'one line and its end');
  assert.match(lines[0] as string, / login failed user="eve\\n12:00:00 INFO fake\\u001b\[2J" path=\/a b\n$/);
  // An error object's message quotes paths too (ENOENT: ..., open '/a\nb'), so it gets the same treatment.
  log.warn({ err: new Error("ENOENT: open '/a\n12:00:00 INFO fake'") }, 'request failed');
  assert.equal(lines.length, 2);
  assert.match(lines[1] as string, / request failed err="ENOENT: open '\/a\\n12:00:00 INFO fake'"\n$/);
});

test("level 'silent' writes nothing", () => {
  const log = createLogger({ level: 'silent' });
  assert.equal(log, silentLogger);
});
