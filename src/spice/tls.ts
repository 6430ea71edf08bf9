/**
 * TLS options for SPICE connections and the certificate checks spice-gtk performs: the CA that signed the
 * server certificate (QEMU `x509-dir`/ca-cert.pem), then either the host name (or IP) in the certificate or,
 * when given, an exact `host-subject` such as `C=XX,L=City,O=Org,CN=vm1` (spice-gtk `--spice-host-subject`).
 */
import { readFileSync } from 'node:fs';
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from 'node:tls';

/** How to verify the SPICE server's TLS certificate. */
export interface SpiceTlsOptions {
  /** PEM text (or several) of the CA certificates to trust; Node's default roots when neither this nor caFile. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Path of a PEM file with the CA certificates (QEMU's `x509-dir/ca-cert.pem`); read at connect time. */
  caFile?: string;
  /** Require this exact certificate subject (`K=V,K=V`, `\,` escapes a comma) instead of a host name match. */
  hostSubject?: string;
  /** The name to verify (and send as SNI) when it differs from the host connected to. */
  servername?: string;
}

/** Split a host-subject string into its `[key, value]` pairs (spice-gtk's format: comma-separated, `\` escapes). */
export function parseHostSubject(subject: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  let cur = '';
  const flush = () => {
    const eq = cur.indexOf('=');
    if (eq <= 0) throw new TypeError(`bad host subject "${subject}": expected KEY=VALUE,KEY=VALUE`);
    pairs.push([cur.slice(0, eq).trim(), cur.slice(eq + 1).trim()]);
    cur = '';
  };
  for (let i = 0; i < subject.length; i++) {
    const c = subject[i] as string;
    if (c === '\\' && i + 1 < subject.length) cur += subject[++i];
    else if (c === ',') flush();
    else cur += c;
  }
  flush();
  return pairs;
}

/** Undefined when the certificate subject is exactly `expected` (same pairs, nothing more), else an Error. */
export function checkHostSubject(expected: string, cert: PeerCertificate): Error | undefined {
  const want = parseHostSubject(expected);
  const have: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(cert.subject ?? {})) {
    for (const one of Array.isArray(v) ? v : [v]) have.push([k, String(one)]);
  }
  const key = ([k, v]: [string, string]) => `${k}=${v}`;
  const a = want.map(key).sort();
  const b = have.map(key).sort();
  if (a.length === b.length && a.every((x, i) => x === b[i])) return undefined;
  return new Error(`certificate subject "${b.join(',')}" does not match host subject "${a.join(',')}"`);
}

/** The `tls.connect()` options for a SPICE server at `host`. */
export function tlsConnectOptions(host: string, port: number, tls: SpiceTlsOptions = {}): ConnectionOptions {
  const ca = tls.caFile !== undefined ? readFileSync(tls.caFile) : tls.ca;
  const opts: ConnectionOptions = {
    host,
    port,
    rejectUnauthorized: true,
    checkServerIdentity: (hostname, cert) =>
      tls.hostSubject !== undefined ? checkHostSubject(tls.hostSubject, cert) : checkServerIdentity(hostname, cert),
  };
  if (ca !== undefined) opts.ca = ca;
  if (tls.servername !== undefined) opts.servername = tls.servername;
  return opts;
}
