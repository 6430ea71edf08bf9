import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { repoRoot } from '../helpers/paths.js';
import { requireTool } from '../helpers/tools.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { verifyUnit } from '../helpers/systemd.js';

/**
 * Starts an example QEMU script paused (-S) with a monitor on stdin, quits it, and returns what QEMU said.
 * QEMU validates every -device/-chardev/-spice option before it reaches the monitor, so a wrong option in the
 * example fails here with QEMU's own message.
 */
function runPaused(script: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(repoRoot, 'examples/host', script), ['-S', '-display', 'none', '-nodefaults', '-monitor', 'stdio'], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('(qemu)')) child.stdin.end('quit\n');
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test('examples/host/qemu-spice.sh is a command line QEMU accepts', async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const port = String(20000 + Math.floor(Math.random() * 20000));
  const r = await runPaused('qemu-spice.sh', { SPICE_PORT: port });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /\(qemu\)/);
});

test('examples/host/qemu-socket.sh is a command line QEMU accepts and creates the socket', async (t) => {
  if (!requireTool(t, 'qemu-system-x86_64', 'qemu-system-x86')) return;
  const dir = await tempDir(t);
  const r = await runPaused('qemu-socket.sh', { SPICEDAV_SOCKET: join(dir, 'vm.sock') });
  assert.equal(r.code, 0, r.output);
});

test('examples/host/libvirt-domain.xml validates against libvirt\'s domain schema', (t) => {
  if (!requireTool(t, 'virt-xml-validate', 'libvirt-clients')) return;
  const file = join(repoRoot, 'examples/host/libvirt-domain.xml');
  const r = spawnSync('virt-xml-validate', [file, 'domain'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stderr + r.stdout, /validates/);
  // The channel that makes sharing work is there, with the exact port name spice-webdavd opens.
  const xml = readFileSync(file, 'utf8');
  assert.match(xml, /<channel type='spiceport'>\s*<source channel='org\.spice-space\.webdav\.0'\/>\s*<target type='virtio' name='org\.spice-space\.webdav\.0'\/>/);
});

test('examples/host/spicedav-share@.service: systemd-analyze verify is clean; its flags exist; fatal exit codes are not retried', async (t) => {
  if (!requireTool(t, 'systemd-analyze', 'systemd')) return;
  const unit = readFileSync(join(repoRoot, 'examples/host/spicedav-share@.service'), 'utf8');
  const exec = /^ExecStart=(\S+) share \$\{SPICEDAV_SHARE_DIR\} (.*)$/m.exec(unit);
  assert.ok(exec, 'ExecStart runs share on the configured folder');
  assert.equal(exec[1], 'spicedav', 'ExecStart names the program for systemd to find in /usr/local/bin or /usr/bin');
  assert.match(exec[2] as string, /--domain %I/);
  const help = (await runCli(['share', '--help'])).stdout + (await runCli(['--help'])).stdout;
  for (const flag of (exec[2] as string).match(/--[a-z-]+/g) ?? []) assert.ok(help.includes(flag), `spicedav share knows ${flag}`);
  const noRestart = /^RestartPreventExitStatus=(.*)$/m.exec(unit)?.[1]?.split(/\s+/).map(Number);
  assert.deepEqual(noRestart, [ExitCode.USAGE, ExitCode.ENVIRONMENT, ExitCode.CONNECTION]);

  await verifyUnit(t, unit, exec[1] as string, 'spicedav-share@vm1.service');
});
