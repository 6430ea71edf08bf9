import { readFile } from 'node:fs/promises';
import { scanOpenFiles, type ProcessInfo } from './proc.js';

/** One TCP connection as the kernel lists it in /proc/net/tcp{,6}. */
export interface TcpEntry {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** Kernel TCP state; 1 = ESTABLISHED, 10 = LISTEN. */
  state: number;
  inode: number;
}

export const TCP_ESTABLISHED = 1;
export const TCP_LISTEN = 10;

/** "0100007F" (little-endian IPv4 as the kernel prints it) → "127.0.0.1"; 32 hex digits → compressed IPv6. */
function decodeAddress(hex: string): string {
  if (hex.length === 8) {
    return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
  }
  // IPv6: four 32-bit words, each in host (little-endian) order.
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) for (const i of [6, 4, 2, 0]) bytes.push(parseInt(hex.slice(w * 8 + i, w * 8 + i + 2), 16));
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes.slice(12).join('.')}`;
  }
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::').replace(/:{3,}/, '::');
}

/**
 * Parses the text of /proc/net/tcp or /proc/net/tcp6. Pure.
 * Layout (header line, then one line per socket):
 *   sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode
 *   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 ...
 */
export function parseProcNetTcp(text: string): TcpEntry[] {
  const out: TcpEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [la, lp] = f[1]!.split(':');
    const [ra, rp] = f[2]!.split(':');
    if (!la || !lp || !ra || !rp) continue;
    out.push({
      localAddress: decodeAddress(la),
      localPort: parseInt(lp, 16),
      remoteAddress: decodeAddress(ra),
      remotePort: parseInt(rp, 16),
      state: parseInt(f[3]!, 16),
      inode: Number(f[9]),
    });
  }
  return out;
}

/** Every TCP socket on this machine (IPv4 and IPv6); empty where /proc is not Linux's. */
export async function listTcp(): Promise<TcpEntry[]> {
  const texts = await Promise.all(['/proc/net/tcp', '/proc/net/tcp6'].map((p) => readFile(p, 'utf8').catch(() => '')));
  return texts.flatMap(parseProcNetTcp);
}

/**
 * Finds which processes hold the given socket inodes, by their `socket:[inode]` file descriptors.
 */
export async function socketOwners(inodes: Set<number>): Promise<Map<number, ProcessInfo>> {
  const owners = new Map<number, ProcessInfo>();
  if (inodes.size === 0) return owners;
  const found = await scanOpenFiles((t) => {
    const m = /^socket:\[(\d+)\]$/.exec(t);
    return m !== null && inodes.has(Number(m[1]));
  });
  for (const f of found) owners.set(Number(/\d+/.exec(f.target)![0]), { pid: f.pid, command: f.command });
  return owners;
}

/**
 * The local processes connected to a TCP port on this machine as clients (e.g. remote-viewer connected to a
 * VM's SPICE port), without connecting to it ourselves: a new SPICE client would disconnect the current one.
 */
export async function localClientsOf(port: number): Promise<ProcessInfo[]> {
  const entries = (await listTcp()).filter((e) => e.state === TCP_ESTABLISHED && e.remotePort === port);
  const owners = await socketOwners(new Set(entries.map((e) => e.inode)));
  const byPid = new Map<number, ProcessInfo>();
  for (const o of owners.values()) byPid.set(o.pid, o);
  return [...byPid.values()];
}

/** The listening sockets on a TCP port (any address). */
export async function localListenersOf(port: number): Promise<TcpEntry[]> {
  return (await listTcp()).filter((e) => e.state === TCP_LISTEN && e.localPort === port);
}
