/**
 * Whether a host names this machine's loopback: 127.0.0.0/8, ::1, localhost, or 127.x mapped into IPv6. One test
 * for every place that treats loopback differently (serve's refusal to listen beyond it without auth, the viewer
 * check, libvirt addresses), so they cannot disagree. Brackets around an IPv6 literal are allowed.
 */
export function isLoopbackHost(host: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/i.test(host.replace(/^\[(.*)\]$/, '$1'));
}
