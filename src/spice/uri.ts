/**
 * SPICE URIs as `spicedav share --spice` takes them, in the forms remote-viewer accepts:
 * `spice://HOST:PORT`, `spice+tls://HOST:TLS_PORT`, and `spice://HOST?port=P&tls-port=T`
 * (IPv6 hosts in brackets: `spice://[::1]:5930`).
 */
import { SpiceError } from './errors.js';

/** Where a SPICE URI points. At least one of `port` and `tlsPort` is set. */
export interface SpiceAddress {
  host: string;
  port?: number;
  tlsPort?: number;
}

function portNumber(value: string, uri: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new SpiceError('SPICE_ERR_INVALID_URI', `bad port "${value}" in SPICE URI ${uri}`);
  return n;
}

/** Parse a SPICE URI; throws SPICE_ERR_INVALID_URI with the accepted forms when it is not one. */
export function parseSpiceUri(uri: string): SpiceAddress {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    url = new URL('invalid:');
  }
  const tls = url.protocol === 'spice+tls:';
  if ((url.protocol !== 'spice:' && !tls) || url.hostname === '') {
    throw new SpiceError('SPICE_ERR_INVALID_URI', `"${uri}" is not a SPICE URI: use spice://HOST:PORT, spice+tls://HOST:TLS_PORT or spice://HOST?port=P&tls-port=T`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const out: SpiceAddress = { host };
  if (url.port !== '') {
    if (tls) out.tlsPort = portNumber(url.port, uri);
    else out.port = portNumber(url.port, uri);
  }
  const qp = url.searchParams.get('port');
  const qt = url.searchParams.get('tls-port');
  if (qp !== null) out.port = portNumber(qp, uri);
  if (qt !== null) out.tlsPort = portNumber(qt, uri);
  if (out.port === undefined && out.tlsPort === undefined) {
    throw new SpiceError('SPICE_ERR_INVALID_URI', `SPICE URI ${uri} has no port: use spice://${url.hostname}:PORT`);
  }
  return out;
}
