import type { Command } from './commander.js';
import type { SpiceTlsOptions } from '../spice/index.js';
import { CliError, ExitCode } from './exit-codes.js';

/** How `share` and `doctor` are told which VM to reach: the same flags, the same meaning. */
export interface SpiceTargetOptions {
  spice?: string;
  domain?: string;
  connect?: string;
  qemuSocket?: string;
  passwordFile?: string;
  caFile?: string;
  hostSubject?: string;
  takeOver?: boolean;
}

/** Adds the VM-target flags to a command; `takeOverHelp` says what --take-over means for that command. */
export function addSpiceTargetOptions(command: Command, takeOverHelp: string): Command {
  return command
    .option('--spice <uri>', "the VM's SPICE server: spice://HOST:PORT, spice+tls://HOST:TLS_PORT, spice://HOST?port=P&tls-port=T")
    .option('--domain <name>', 'a libvirt domain (VM name, id or UUID): its SPICE address comes from `virsh domdisplay`, asked again at each reconnection')
    .option('--connect <uri>', "with --domain: the libvirt connection (default: virsh's default, then qemu:///system)")
    .option('--qemu-socket <path>', 'QEMU -chardev socket,server=on path of the webdav virtserialport')
    .option('--password-file <file>', 'read the SPICE password from this file (or set SPICE_PASSWORD); never on the command line')
    .option('--ca-file <file>', 'CA certificate(s) for TLS (QEMU x509-dir/ca-cert.pem)')
    .option('--host-subject <subject>', 'accept the server certificate with this subject instead of a host name match')
    .option('--take-over', takeOverHelp);
}

/** The TLS checks the flags ask for, or undefined for the defaults. */
export function tlsOptions(o: SpiceTargetOptions): SpiceTlsOptions | undefined {
  return o.caFile || o.hostSubject ? { caFile: o.caFile, hostSubject: o.hostSubject } : undefined;
}

/** At most one way to reach the VM; --connect only with --domain. */
export function checkTarget(o: SpiceTargetOptions): void {
  if ([o.spice, o.domain, o.qemuSocket].filter(Boolean).length > 1) {
    throw new CliError('CLI_ERR_TRANSPORT', 'give one of --spice, --domain and --qemu-socket, not several', ExitCode.USAGE);
  }
  if (o.connect && !o.domain) throw new CliError('CLI_ERR_TRANSPORT', '--connect names the libvirt connection of --domain; give --domain NAME too', ExitCode.USAGE);
}
