import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from './tmp.js';

/**
 * `systemd-analyze verify` on a unit file's text, as `fileName` (a template needs an instance name, e.g.
 * `x@vm1.service`). verify needs the ExecStart binary to exist, so `program` (the unit's ExecStart program) is
 * pointed at a stand-in. It must pass, and say nothing about the unit: unknown keys only warn.
 */
export async function verifyUnit(t: Pick<TestContext, 'after'>, unit: string, program: string, fileName: string): Promise<void> {
  const dir = await tempDir(t);
  const bin = join(dir, 'spicedav');
  writeFileSync(bin, '#!/bin/sh\n');
  chmodSync(bin, 0o755);
  const copy = join(dir, fileName);
  assert.ok(unit.includes(`\nExecStart=${program} `), `the unit runs ${program}`);
  writeFileSync(copy, unit.replace(`\nExecStart=${program} `, `\nExecStart=${bin} `));
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', copy], { encoding: 'utf8' });
  const name = fileName.replace(/@.*$|\.service$/, '');
  const complaints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes(name));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(complaints, [], 'no warnings about the unit (unknown keys only warn, so they are checked here)');
}
