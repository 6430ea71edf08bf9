import { Option, type Command } from '../commander.js';
import type { Transport, TransportState } from '../../host/index.js';
import type { CommandModule } from '../program.js';
import { globalsOf, loggerFor, runUntilSignal, davReady, davStatusDisplay } from '../runtime.js';
import { shareDir, spicePassword } from '../options.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { localViewer } from '../viewer-check.js';
import { formatDuration } from '../format.js';
import type { Logger } from '../../log.js';
import { addSpiceTargetOptions, checkTarget, tlsOptions, type SpiceTargetOptions } from '../spice-target.js';
import { hasCode } from '../../errors.js';

interface ShareCliOptions extends SpiceTargetOptions {
  readOnly?: boolean;
  followSymlinks: 'never' | 'inside';
  stateDir?: string;
}

const EXAMPLES = `
Examples:
  spicedav share ~/Public --spice spice://127.0.0.1:5930
  spicedav share ~/Public --domain win11          (a libvirt VM: the address comes from virsh domdisplay)
  spicedav share ~/Public --spice spice+tls://vmhost:5931 --ca-file ca-cert.pem --password-file ~/.spicepw
  spicedav share ~/Public --qemu-socket /run/spicedav/vm.sock     (no SPICE client needed)
  SPICE_PASSWORD=secret spicedav share ~/Public --spice spice://127.0.0.1:5930 --read-only

The VM needs the webdav port (see examples/host/ for QEMU and libvirt), and the guest needs
\`spicedav guest\` or spice-webdavd running. SPICE allows one client per VM: while a viewer is connected,
share waits (or use --qemu-socket, which leaves SPICE to the viewer; or --take-over).`;

function describe(state: TransportState): string {
  switch (state.state) {
    case 'linked':
      return 'linked';
    case 'retrying':
      return `retrying in ${formatDuration((state.retryInMs ?? 0) / 1000)}${state.error ? `: ${state.error.message}` : ''}`;
    default:
      return state.detail ? `${state.state}: ${state.detail}` : state.state;
  }
}

/** The modules `share` runs on, loaded when it runs (not for every command's --help). */
async function loadShareRuntime() {
  const [dav, host, spice] = await Promise.all([import('../../../dav/index.js'), import('../../host/index.js'), import('../../spice/index.js')]);
  return { DavServer: dav.DavServer, ...host, parseSpiceUri: spice.parseSpiceUri };
}
type ShareRuntime = Awaited<ReturnType<typeof loadShareRuntime>>;

async function transportFor(o: ShareCliOptions, log: Logger, { QemuSocketTransport, SpiceTransport, DomainLocator, runningDomains, parseSpiceUri }: ShareRuntime): Promise<{ transport: Transport; target: string }> {
  checkTarget(o);
  if (!o.spice && !o.domain && !o.qemuSocket) {
    // Never a guess (sharing a folder with the wrong VM is worse than an error), but name the candidates.
    const running = await runningDomains();
    const hint = running.length ? `; running libvirt domains: ${running.join(', ')} (e.g. --domain ${running[0]})` : '';
    throw new CliError('CLI_ERR_TRANSPORT', `say how to reach the VM: --spice spice://HOST:PORT, --domain NAME (a libvirt VM) or --qemu-socket PATH${hint}`, ExitCode.USAGE);
  }
  if (o.qemuSocket) {
    return { transport: new QemuSocketTransport({ path: o.qemuSocket, log: log.child({ component: 'qemu-socket' }) }), target: o.qemuSocket };
  }
  const common = { password: spicePassword(o.passwordFile), tls: tlsOptions(o), viewerCheck: o.takeOver ? undefined : localViewer, log: log.child({ component: 'spice' }) };
  if (o.domain) {
    // The domain's SPICE password comes from libvirt too, unless one was given.
    const locator = new DomainLocator({ domain: o.domain, connect: o.connect, password: common.password === undefined });
    // Asked once before starting, so that a wrong name or a missing virsh ends the command with its message and
    // exit code. A domain that is not running yet, or libvirt not answering now (libvirtd restarting at login),
    // is not an error: the transport asks again until it can link.
    try {
      await locator.locate();
    } catch (err) {
      if (!hasCode(err, 'HOST_ERR_DOMAIN_NOT_RUNNING') && !hasCode(err, 'HOST_ERR_LIBVIRT')) throw err;
    }
    return { transport: new SpiceTransport({ ...common, locate: (signal) => locator.locate(signal) }), target: `libvirt domain ${o.domain}` };
  }
  const address = parseSpiceUri(o.spice!);
  return { transport: new SpiceTransport({ ...address, ...common }), target: o.spice! };
}

async function share(dir: string, o: ShareCliOptions, command: Command): Promise<void> {
  const runtime = await loadShareRuntime();
  const { DavServer, Share } = runtime;
  const globals = globalsOf(command);
  const log = loggerFor(globals);
  const root = shareDir(dir);
  const { transport, target } = await transportFor(o, log, runtime);
  const dav = new DavServer({ root, readOnly: o.readOnly, followSymlinks: o.followSymlinks, stateDir: o.stateDir, log: log.child({ component: 'dav' }) });
  await davReady(dav);
  const share = new Share({ dav, transport, log: log.child({ component: 'share' }) });
  let state: TransportState = { state: 'connecting' };
  const display = davStatusDisplay(globals, dav, (tracker) => {
    const s = share.stats;
    return {
      title: `sharing ${root}${o.readOnly ? ' (read-only)' : ''} with ${target}`,
      state: describe(state),
      connections: s.channels,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      transfers: tracker.views(),
    };
  });
  const fatal = new Promise<Error | undefined>((resolve) => {
    share.on('state', (next: TransportState) => {
      const changed = next.state !== state.state || next.detail !== state.detail;
      // The attempt after a retry is not news, its outcome is: a new failure, or linked/waiting.
      const retryAttempt = next.state === 'connecting' && state.state === 'retrying';
      state = next;
      if (next.state === 'closed' && next.error) resolve(next.error);
      else if (next.state === 'retrying') {
        if (next.error && !next.repeated) display.event(describe(next));
      } else if (changed && !retryAttempt) display.event(describe(next));
    });
  });
  share.on('link', () => display.event('guest attached: the folder is available in the VM'));
  share.on('unlink', (err?: Error) => display.event(`guest link ended${err ? `: ${err.message}` : ''}; open guest connections were closed`));
  display.event(`sharing ${root}${o.readOnly ? ' read-only' : ''} with ${target}  (Ctrl-C stops)`);
  share.start();
  display.start();
  await runUntilSignal(
    async () => {
      display.stop();
      await share.close();
      await dav.close();
    },
    log,
    fatal,
  );
}

export const shareCommand: CommandModule = {
  register(program) {
    const command = program
      .command('share')
      .summary('on the host: share a folder with a VM over SPICE or a QEMU socket')
      .description(
        'Share DIR with a VM: connect to its SPICE server as a client (or to a QEMU chardev socket), open the ' +
          'org.spice-space.webdav.0 port and serve DIR there with the WebDAV server. Reconnects when the VM reboots.',
      )
      .argument('<dir>', 'the folder to share');
    addSpiceTargetOptions(command, 'link even when a viewer is connected (SPICE will disconnect it)')
      .option('-r, --read-only', 'the guest can read but change nothing')
      .addOption(new Option('--follow-symlinks <policy>', 'never: refuse paths through symlinks; inside: follow links that stay in the folder').choices(['never', 'inside']).default('never'))
      .option('--state-dir <dir>', 'where dead properties and WebDAV locks are kept (default $XDG_STATE_HOME/spicedav)')
      .addHelpText('after', EXAMPLES)
      .action(share);
  },
};
