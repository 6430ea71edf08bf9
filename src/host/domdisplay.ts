/**
 * What `virsh domdisplay --type spice [--include-password] NAME` prints, read into a SPICE address (pure; the
 * virsh calls are in libvirt.ts). One URI:
 *
 *     spice://127.0.0.1:5900
 *     spice://127.0.0.1:5900?tls-port=5901
 *     spice://localhost:5930?tls-port=5931   (listening on every address)
 *     spice://127.0.0.1?tls-port=5901        (TLS only)
 *     spice+unix:///run/libvirt/...          (<listen type='socket'>: no TCP port)
 *     spice://127.0.0.1:5900?password=p&w?d  (--include-password: the password as is, unescaped, last)
 */
import { parseSpiceUri } from '../spice/index.js';
import type { LocatedServer } from './transports/spice.js';
import { HostError } from './errors.js';
import { isLoopbackHost } from '../loopback.js';

/** A SPICE address as libvirt gives it: with the domain's SPICE password when it has one and we may see it. */
export type DomainSpiceAddress = LocatedServer;

// virsh prints "localhost" for a server listening on every address; 127.0.0.1 reaches 0.0.0.0 and a dual-stack
// :: alike, where "localhost" could resolve to ::1 first.
const WILDCARD = new Set(['localhost', '0.0.0.0', '::']);

/** HOST_ERR_NO_SPICE_DISPLAY for a domain, with the fix. */
export function noSpiceDisplay(domain: string): HostError {
  return new HostError('HOST_ERR_NO_SPICE_DISPLAY', `the domain "${domain}" has no SPICE display: give it <graphics type='spice' autoport='yes'/> (virsh edit ${domain})`);
}

/** The host of a remote libvirt connection URI (qemu+ssh://user@vmhost/system → vmhost); undefined when local. */
export function remoteHostOf(connect: string | undefined): string | undefined {
  if (connect === undefined) return undefined;
  let host: string;
  try {
    host = new URL(connect).hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    return undefined;
  }
  return host === '' || isLoopbackHost(host) ? undefined : host;
}

/**
 * Parse what `virsh domdisplay` printed into a SPICE address. A server listening on every address (0.0.0.0, ::,
 * printed as localhost) is reached on 127.0.0.1, or on `remoteHost` for a domain of a remote libvirt; one that
 * listens on loopback only cannot be reached from another machine, and an address that would lead to this
 * machine's loopback instead (another VM's port, perhaps) is refused. Throws HOST_ERR_NO_SPICE_DISPLAY when there
 * is no usable TCP SPICE URI.
 */
export function parseDomDisplay(output: string, domain: string, remoteHost?: string): DomainSpiceAddress {
  const uri = output
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /^spice(\+\w+)?:\/\//.test(l));
  if (uri === undefined) throw noSpiceDisplay(domain);
  if (uri.startsWith('spice+unix:')) {
    throw new HostError(
      'HOST_ERR_NO_SPICE_DISPLAY',
      `the domain "${domain}" has its SPICE display on a unix socket (${uri}), which spicedav cannot reach: give it <listen type='address' address='127.0.0.1'/>, or use --qemu-socket`,
    );
  }
  // virsh appends the password last and does not escape it: it is everything after "password=".
  const p = uri.search(/[?&]password=/);
  const address: DomainSpiceAddress = parseSpiceUri(p < 0 ? uri : uri.slice(0, p));
  if (p >= 0) address.password = uri.slice(p + '?password='.length);
  if (WILDCARD.has(address.host)) address.host = remoteHost ?? '127.0.0.1';
  else if (remoteHost !== undefined && isLoopbackHost(address.host)) {
    throw new HostError(
      'HOST_ERR_NO_SPICE_DISPLAY',
      `the domain "${domain}" on ${remoteHost} has its SPICE server on ${address.host}, that machine's loopback, which this one cannot reach: give it <listen type='address' address='0.0.0.0'/>, or tunnel the port (ssh -L) and use --spice`,
    );
  }
  return address;
}
