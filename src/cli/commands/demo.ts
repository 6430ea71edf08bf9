import { Option, type Command } from 'commander';
import { join } from 'node:path';
import { DavServer } from '../../../dav/index.js';
import { createMemoryTransport, Share } from '../../host/index.js';
import { GuestProxy } from '../../guest/index.js';
import type { CommandModule } from '../program.js';
import { globalsOf, loggerFor, runUntilSignal, statusDisplay } from '../runtime.js';
import { portOption, shareDir } from '../options.js';
import { TransferTracker } from '../transfers.js';
import { packageInfo } from '../package-root.js';
import { CliError, ExitCode } from '../exit-codes.js';

interface DemoOptions {
  port: number;
  dir?: string;
  readOnly?: boolean;
}

/**
 * `npm start`: the whole product in one process. The host half (DavServer + host-role mux) and the guest half
 * (loopback listener + guest-role mux) are joined by an in-memory pipe where a real setup has a virtio port,
 * QEMU and a SPICE connection. Every request to the printed URL crosses both multiplexers.
 */
async function demo(o: DemoOptions, command: Command): Promise<void> {
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
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new CliError('CLI_ERR_PORT_IN_USE', `port ${o.port} is in use (a spicedav guest or spice-webdavd already runs?); pick another with --port`, ExitCode.ENVIRONMENT, { cause: err });
    }
    throw err;
  }
  share.start();
  const url = `http://127.0.0.1:${proxy.addresses[0]?.port ?? o.port}/`;
  const display = statusDisplay(globals, () => {
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
  const tracker = new TransferTracker(dav, (line) => display.event(line));
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
      .addHelpText('after', '\nExample:\n  npm start                       (= spicedav demo)\n  spicedav demo --dir ~/Public -p 9900')
      .action(demo);
  },
};
