import type { Command } from '../commander.js';
import { existsSync } from 'node:fs';
import type { CheckResult } from '../../doctor/report.js';
import { DEFAULT_GUEST_PORT } from '../../guest/defaults.js';
import { DEFAULT_PORT_PATH } from '../../guest/port-device.js';
import type { CommandModule } from '../program.js';
import { portOption, spicePassword } from '../options.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { localViewer } from '../viewer-check.js';
import { addSpiceTargetOptions, checkTarget, tlsOptions, type SpiceTargetOptions } from '../spice-target.js';

interface DoctorOptions extends SpiceTargetOptions {
  guest?: boolean;
  device: string;
  port: number;
}

const WINDOWS_NOTES = `Windows guests (checked by hand; see examples/guest/windows.md):
  sc query WebClient              the WebClient service must be RUNNING (sc config WebClient start= auto)
  reg query HKLM\\SYSTEM\\CurrentControlSet\\Services\\WebClient\\Parameters /v FileSizeLimitInBytes
                                  files over ~50 MB fail with 0x800700DF until this is 0xffffffff`;

const EXAMPLES = `
Examples:
  spicedav doctor --spice spice://127.0.0.1:5930   on the host: the VM, its webdav port, the guest daemon
  spicedav doctor --domain win11                   the same for a libvirt VM (address from virsh domdisplay)
  spicedav doctor --qemu-socket /run/spicedav/vm.sock
  spicedav doctor --guest                          in the VM: the port device, the listener, the share

Exit status 0 when nothing failed, ${ExitCode.DOCTOR_PROBLEMS} when a check failed (each failure prints its fix).`;

async function doctor(o: DoctorOptions, _command: Command): Promise<void> {
  const { renderReport, reportOk } = await import('../../doctor/report.js');
  let results: CheckResult[];
  checkTarget(o);
  if (o.spice || o.domain || o.qemuSocket) {
    const { hostChecks } = await import('../../doctor/host.js');
    results = await hostChecks({ spice: o.spice, domain: o.domain, connect: o.connect, qemuSocket: o.qemuSocket, password: spicePassword(o.passwordFile), tls: tlsOptions(o), takeOver: o.takeOver, viewerCheck: localViewer });
  } else if (o.guest || existsSync('/sys/class/virtio-ports') || process.platform === 'win32') {
    const { guestChecks } = await import('../../doctor/guest.js');
    results = await guestChecks({ device: o.device, port: o.port });
    if (process.platform === 'win32') process.stdout.write(`${WINDOWS_NOTES}\n`);
  } else {
    throw new CliError('CLI_ERR_DOCTOR_TARGET', 'this does not look like a VM: on the host, say which VM with --spice URI, --domain NAME or --qemu-socket PATH; in a guest, pass --guest', ExitCode.USAGE);
  }
  process.stdout.write(renderReport(results));
  if (!reportOk(results)) throw new CliError('CLI_ERR_DOCTOR', 'doctor found problems (see above)', ExitCode.DOCTOR_PROBLEMS);
}

export const doctorCommand: CommandModule = {
  register(program) {
    const command = program
      .command('doctor')
      .summary('find out why sharing does not work, and how to fix it')
      .description(
        'Check a setup step by step and print the fix for each problem. On the host: is the SPICE server there, ' +
          'does a viewer hold the VM, does the VM have the webdav port, has the guest opened it. In the guest: the ' +
          'port device, who holds it, the loopback listener, and whether the share answers. Never disconnects a viewer ' +
          'unless --take-over.',
      )
      .option('--guest', 'run the guest-side checks (the default inside a VM)');
    addSpiceTargetOptions(command, 'check the VM even if a viewer is connected (it gets disconnected)')
      .option('--device <path>', 'guest side: the webdav port device', DEFAULT_PORT_PATH)
      .option('-p, --port <port>', 'guest side: the proxy\'s TCP port', portOption(), DEFAULT_GUEST_PORT)
      .addHelpText('after', EXAMPLES)
      .action(doctor);
  },
};
