import { Option, type Command } from '../commander.js';
import { join } from 'node:path';
import type { DemoVm } from '../../vm/demo.js';
import type { CommandModule } from '../program.js';
import { globalsOf, loggerFor, runUntilSignal, davStatusDisplay } from '../runtime.js';
import { portOption, shareDir } from '../options.js';
import { packageInfo } from '../package-root.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { hasCode } from '../../errors.js';

interface DemoOptions {
  port: number;
  dir?: string;
  readOnly?: boolean;
  vm?: boolean;
}

/**
 * `npm start`: the whole product in one process. The host half (DavServer + host-role mux) and the guest half
 * (loopback listener + guest-role mux) are joined by an in-memory pipe where a real setup has a virtio port,
 * QEMU and a SPICE connection. Every request to the printed URL crosses both multiplexers.
 */
async function demo(o: DemoOptions, command: Command): Promise<void> {
  if (o.vm) return demoVm(o, command);
  const [{ DavServer }, { createMemoryTransport, Share }, { GuestProxy }, { GuestErrorCode }] = await Promise.all([
    import('../../../dav/index.js'), import('../../host/index.js'), import('../../guest/proxy.js'), import('../../guest/errors.js'),
  ]);
  const globals = globalsOf(command);
  const log = loggerFor(globals);
  const root = shareDir(o.dir ?? join(packageInfo().root, 'examples', 'share'));
  const dav = new DavServer({ root, readOnly: o.readOnly, stateDir: false, log: log.child({ component: 'dav' }) });
  const { transport, guestEnd } = createMemoryTransport();
  const share = new Share({ dav, transport, log: log.child({ component: 'share' }) });
  const proxy = new GuestProxy({ device: guestEnd, port: o.port, mdns: false, log: log.child({ component: 'guest' }) });
  try {
    await proxy.start();
  } catch (err) {
    await dav.destroy();
    if (hasCode(err, GuestErrorCode.ADDRESS_IN_USE)) {
      throw new CliError('CLI_ERR_PORT_IN_USE', `port ${o.port} is in use (a spicedav guest or spice-webdavd already runs?); pick another with --port`, ExitCode.ENVIRONMENT, { cause: err });
    }
    throw err;
  }
  share.start();
  const url = `http://127.0.0.1:${proxy.addresses[0]?.port ?? o.port}/`;
  const display = davStatusDisplay(globals, dav, (tracker) => {
    const s = share.stats;
    return {
      title: `demo: ${root} → dav → mux (host) → memory "virtio port" → mux (guest) → ${url}`,
      state: s.linked ? 'linked' : 'linking',
      connections: proxy.stats.connections,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      transfers: tracker.views(),
    };
  });
  display.event(`spicedav demo: sharing ${root}${o.readOnly ? ' read-only' : ''} through the whole chain in one process.`);
  display.event(`Open or mount ${url}`);
  display.event(`  curl ${url}welcome.txt · gio mount dav://127.0.0.1:${o.port}/ · cadaver ${url}`);
  display.event('Ctrl-C stops.');
  display.start();
  await runUntilSignal(
    async () => {
      display.stop();
      await proxy.close();
      await share.close();
      await dav.close();
    },
    log,
    proxy.closed,
  );
}

/**
 * `spicedav demo --vm` (`npm start -- --vm`): the real thing on one machine. Builds a small guest from the host's
 * packages (busybox, node, curl if installed, this spicedav build; cached), boots it under QEMU (KVM where it
 * really works, else TCG) with SPICE on 127.0.0.1 and the webdav port, runs the host side here (DavServer on
 * the demo folder + Share over a SpiceTransport) and hands the terminal to the guest's serial console, where
 * `spicedav guest` serves the folder on localhost:9843. `poweroff` in the guest, Ctrl-C (in the console or as
 * a signal) or Ctrl-] end it: QEMU is killed, its temp dir removed, exit 0.
 */
async function demoVm(o: DemoOptions, command: Command): Promise<void> {
  const [{ DavServer }, { Share, SpiceTransport }, { parseSpiceUri }, { bootDemoVm, checkDemoRequirements, demoCacheDir, ensureDemoImage }, { MissingPackagesError }] =
    await Promise.all([
      import('../../../dav/index.js'), import('../../host/index.js'), import('../../spice/index.js'), import('../../vm/demo.js'),
      import('../../vm/requirements.js'),
    ]);
  const globals = globalsOf(command);
  const log = loggerFor(globals);
  const root = shareDir(o.dir ?? join(packageInfo().root, 'examples', 'share'));
  const missing = (err: unknown): never => {
    if (err instanceof MissingPackagesError) {
      throw new CliError('CLI_ERR_VM_PACKAGES', `demo --vm needs QEMU, a kernel and busybox from the host: ${err.message}`, ExitCode.ENVIRONMENT, { cause: err });
    }
    throw err;
  };
  try {
    checkDemoRequirements();
  } catch (err) {
    missing(err);
  }
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  out(`spicedav demo --vm: sharing ${root}${o.readOnly ? ' read-only' : ''} with a QEMU guest.`);
  const started = Date.now();
  const image = await ensureDemoImage(packageInfo().root).catch(missing);
  if (image.built) out(`  built the guest image (${Math.round(image.size / 1048576)} MB, cached in ${demoCacheDir()})`);
  const dav = new DavServer({ root, readOnly: o.readOnly, stateDir: false, log: log.child({ component: 'dav' }) });
  let vm: DemoVm;
  try {
    vm = await bootDemoVm(image, { guestPort: o.port });
  } catch (err) {
    await dav.destroy();
    throw err;
  }
  const accel = vm.accel[0] === 'kvm' ? 'KVM' : 'TCG (no usable KVM: slower)';
  out(`  QEMU ${accel}, SPICE on 127.0.0.1:${vm.spicePort}; the guest's console follows (\`poweroff\` or Ctrl-C ends it).`);
  out('');
  const transport = new SpiceTransport({ ...parseSpiceUri(`spice://127.0.0.1:${vm.spicePort}`), log: log.child({ component: 'spice' }) });
  const share = new Share({ dav, transport, log: log.child({ component: 'share' }) });
  share.start();

  // The terminal goes to the guest: raw when it is a TTY (the guest's shell edits the line and echoes), with
  // Ctrl-C and Ctrl-] kept here to end the demo.
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  let userStop: () => void = () => {};
  const userStopped = new Promise<void>((resolve) => (userStop = resolve));
  const onInput = (chunk: Buffer): void => {
    if (raw && (chunk.includes(0x03) || chunk.includes(0x1d))) return userStop();
    vm.console.write(chunk);
  };
  if (raw) stdin.setRawMode(true);
  stdin.on('data', onInput);
  stdin.resume();
  vm.console.on('data', (d: Buffer) => process.stdout.write(d));
  vm.console.on('error', () => {});
  // A guest that powered off ends the SPICE session on purpose: close the share at once, before its transport
  // takes the lost link for a failure and warns about it.
  void vm.qemu.exited.then(() => share.close());
  const guestGone = vm.qemu.exited.then((s) =>
    s.code === 0 || s.code === null ? undefined : new CliError('CLI_ERR_VM_EXIT', `QEMU exited with ${s.code}: ${vm.qemu.output().trim()}`, ExitCode.FAILURE),
  );
  await runUntilSignal(
    async () => {
      stdin.off('data', onInput);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
      await share.close();
      await vm.close();
      await dav.close();
      out(`\nspicedav demo --vm: the guest is off (${Math.round((Date.now() - started) / 1000)} s).`);
    },
    log,
    Promise.race([guestGone, userStopped.then(() => undefined)]),
  );
}

export const demoCommand: CommandModule = {
  register(program) {
    program
      .command('demo')
      .summary('the whole chain in one process on a demo folder (what `npm start` runs)')
      .description(
        'Run host and guest halves in one process, joined by an in-memory pipe instead of a VM, and serve a demo ' +
          'folder on http://127.0.0.1:9843/: the quickest way to see spicedav work, no VM needed.',
      )
      .addOption(new Option('-p, --port <port>', 'loopback TCP port of the guest half').argParser(portOption(true)).default(9843))
      .option('--dir <dir>', 'the folder to share (default: examples/share in the package)')
      .option('-r, --read-only', 'the demo share can be read but not changed')
      .option('--vm', 'boot a real QEMU guest (built from the host\'s busybox, node and kernel) and give this terminal its console')
      .addHelpText('after', '\nExample:\n  npm start                       (= spicedav demo)\n  npm start -- --vm               (= spicedav demo --vm: a real VM; needs qemu-system-x86, busybox-static, linux-image-amd64)\n  spicedav demo --dir ~/Public -p 9900')
      .action(demo);
  },
};
