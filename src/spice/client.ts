/**
 * `connectSpice()`: the entry point of the SPICE client. Validates the options, links the main channel (plain,
 * or TLS; NEED_SECURED on the plain port is retried on the TLS port) and resolves with the session once the
 * server has listed its channels.
 */
import type { SpiceEndpoint } from './channel-connection.js';
import { SpiceError } from './errors.js';
import { checkPassword } from './link.js';
import { SpiceSession } from './main-channel.js';

/** Options of {@link connectSpice}: where the server is, how to authenticate, and a signal to give up. */
export interface ConnectSpiceOptions extends SpiceEndpoint {
  /** Aborting it while connecting rejects with SPICE_ERR_CLOSED at once. */
  signal?: AbortSignal;
}

/**
 * Connect to a SPICE server and link its main channel. Rejects with a SpiceError whose code tells what went
 * wrong (SPICE_ERR_CONNECT, SPICE_ERR_TLS, SPICE_ERR_WRONG_PASSWORD, SPICE_ERR_PERMISSION_DENIED,
 * SPICE_ERR_TLS_REQUIRED, SPICE_ERR_TIMEOUT...) and whose message says what to do.
 * Note that SPICE serves one client per VM: linking disconnects any viewer already connected.
 */
export async function connectSpice(options: ConnectSpiceOptions): Promise<SpiceSession> {
  checkPassword(options.password);
  for (const [name, v] of [['port', options.port], ['tlsPort', options.tlsPort]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > 65535)) {
      throw new SpiceError('SPICE_ERR_CONNECT', `invalid SPICE ${name} ${String(v)}: expected 1-65535`);
    }
  }
  const { signal, ...endpoint } = options;
  if (signal?.aborted) throw new SpiceError('SPICE_ERR_CLOSED', 'connecting to the SPICE server was aborted');
  const session = new SpiceSession(endpoint);
  const onAbort = () => void session.destroy(new SpiceError('SPICE_ERR_CLOSED', 'connecting to the SPICE server was aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await session.connect();
  } catch (err) {
    await session.destroy();
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return session;
}
