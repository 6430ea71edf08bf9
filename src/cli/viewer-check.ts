import { localClientsOf } from '../doctor/sockets.js';
import { isLoopbackHost } from '../loopback.js';

/**
 * Tells whether another program (remote-viewer, virt-manager...) is connected to a SPICE server on this machine,
 * by reading the kernel's socket table instead of connecting: SPICE serves one client per VM, and linking
 * would disconnect the viewer the user is looking at. Remote servers can't be checked this way: undefined.
 */
export async function localViewer(host: string, port: number | undefined): Promise<string | undefined> {
  if (port === undefined || !isLoopbackHost(host)) return undefined;
  const others = (await localClientsOf(port)).filter((p) => p.pid !== process.pid);
  if (others.length === 0) return undefined;
  return others.map((p) => `${p.command.split(' ')[0]!.split('/').pop()} (pid ${p.pid})`).join(', ');
}
