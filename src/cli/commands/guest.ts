import { Option, type Command } from '../commander.js';
import { DEFAULT_GUEST_HOSTS, DEFAULT_GUEST_PORT, DEFAULT_WAIT_FOR_HOST } from '../../guest/defaults.js';
import { DEFAULT_PORT_PATH } from '../../guest/port-device.js';
import type { CommandModule } from '../program.js';
import { globalsOf, loggerFor, runUntilSignal, statusDisplay } from '../runtime.js';
import { portOption, secondsOption } from '../options.js';
import { startBufferGc } from '../buffer-gc.js';

interface GuestOptions {
  device: string;
  port: number;
  host: string[];
  waitForHost: number;
  mdns: boolean | 'auto';
}

const EXAMPLES = `
Examples:
  spicedav guest                             serve http://localhost:9843/ from the VM's webdav port
  spicedav guest -p 9843 --no-mdns           spice-webdavd's usual flags work the same
  spicedav guest --device unix:/tmp/port.sock   a unix socket standing in for the port (tests)

Then mount the share in the guest:
  gio mount dav://localhost:9843/            GNOME (Files shows "Spice client folder" via mDNS)
  mount -t davfs http://localhost:9843/ /mnt/host
  net use Z: http://localhost:9843/          Windows (WebClient service)

Run it at boot with the systemd unit and udev rule in examples/guest/.`;

async function guest(o: GuestOptions, command: Command): Promise<void> {
  const { GuestProxy } = await import('../../guest/proxy.js');
  const globals = globalsOf(command);
  const log = loggerFor(globals);
  const proxy = new GuestProxy({
    device: o.device,
    port: o.port,
    hosts: o.host,
    waitForHost: o.waitForHost,
    mdns: o.mdns,
    log: log.child({ component: 'guest' }),
  });
  const display = statusDisplay(globals, () => {
    const s = proxy.stats;
    return {
      title: `spicedav guest: http://localhost:${o.port}/ ↔ ${o.device}`,
      state: s.state === 'attached' ? 'host attached' : s.state === 'waiting' ? 'waiting for the host' : s.state,
      connections: s.connections,
      bytesIn: s.bytesToHost,
      bytesOut: s.bytesFromHost,
      transfers: [],
    };
  });
  proxy.on('state', (e) => {
    if (e.state === 'attached') {
      const resumed = proxy.stats.lastResumeMs;
      display.event(`host attached${resumed !== undefined ? ` (${(resumed / 1000).toFixed(1)}s after it left)` : ''}: the share is at http://localhost:${o.port}/`);
    } else if (e.state === 'waiting' && proxy.stats.hostLosses > 0) {
      display.event('host left: open connections were closed; waiting for it to come back');
    }
  });
  await proxy.start();
  // A relay's garbage is Buffers, which V8 lets pile up to about 64 MiB before it collects them (buffer-gc.ts).
  const bufferGc = startBufferGc();
  const bound = proxy.addresses.map((a) => (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`)).join(', ');
  display.event(`listening on ${bound}; waiting for the host on ${o.device}  (Ctrl-C stops)`);
  display.start();
  await runUntilSignal(
    async () => {
      display.stop();
      bufferGc?.stop();
      await proxy.close();
    },
    log,
    proxy.closed,
  );
}

export const guestCommand: CommandModule = {
  register(program) {
    program
      .command('guest')
      .summary('inside the VM: serve the host\'s shared folder on http://localhost:9843/')
      .description(
        'Run inside the VM (drop-in for spice-webdavd): bridge the virtio port org.spice-space.webdav.0 to a WebDAV ' +
          'endpoint on loopback (127.0.0.1 and ::1). Survives the host coming and going.',
      )
      .option('--device <path>', 'the webdav port: a device path, unix:PATH or unix-listen:PATH', DEFAULT_PORT_PATH)
      .addOption(new Option('-p, --port <port>', 'TCP port on loopback').argParser(portOption()).default(DEFAULT_GUEST_PORT))
      .option('--host <address...>', 'loopback addresses to listen on', [...DEFAULT_GUEST_HOSTS])
      .addOption(
        new Option('--wait-for-host <seconds>', 'how long a connection waits for a host before it gets 503').argParser(secondsOption).default(DEFAULT_WAIT_FOR_HOST, String(DEFAULT_WAIT_FOR_HOST / 1000)),
      )
      .addOption(new Option('--mdns', 'advertise "Spice client folder" via avahi (default: when avahi runs)').default('auto'))
      .option('--no-mdns', 'do not advertise over mDNS')
      .addHelpText('after', EXAMPLES)
      .action(guest);
  },
};
