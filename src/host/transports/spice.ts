/**
 * The SPICE transport: `spicedav share --spice spice://HOST:PORT`. Connects to the VM's SPICE server as its
 * client, finds the webdav channel in CHANNELS_LIST (also when hot-plugged later), links it and emits 'link'
 * with a fresh stream each time the guest opens the port; that stream ends on CLOSED/BREAK or when the channel
 * is lost. When the server goes away (QEMU stopped, restarted, VM destroyed) it reconnects with capped
 * exponential backoff. When a viewer takes the session over, it says so and waits instead of fighting it.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect } from 'node:net';
import { hasCode } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { connectSpice, SPICE_CHANNEL_WEBDAV, SPICE_WEBDAV_PORT_NAME, type SpiceAddress, type SpiceEndpoint, type SpicePortChannel, type SpiceSession } from '../../spice/index.js';
import { Backoff, type BackoffOptions } from '../backoff.js';
import { RepeatedFailure } from '../repeated-failure.js';
import { HostError, ONE_CLIENT_HOWTO, WEBDAV_PORT_HOWTO } from '../errors.js';
import { LinkStream } from '../link-stream.js';
import type { Transport, TransportState } from '../transport.js';

/** Where a SPICE server is, as `locate` answers: its address, and its password when the answer carries one. */
export type LocatedServer = SpiceAddress & Pick<SpiceEndpoint, 'password'>;

/** Options of {@link SpiceTransport}: the SPICE endpoint plus reconnection behaviour. */
export interface SpiceTransportOptions extends Omit<SpiceEndpoint, 'host'> {
  /** The SPICE server's host; required unless `locate` is given. */
  host?: string;
  /**
   * Asked before every connection attempt where the server is now, instead of a fixed host and port (e.g.
   * DomainLocator.locate for a libvirt domain, whose port changes each time it starts). A password it returns
   * replaces `password`. HOST_ERR_DOMAIN_NOT_FOUND, HOST_ERR_NO_SPICE_DISPLAY and HOST_ERR_NO_VIRSH end the
   * transport; HOST_ERR_DOMAIN_NOT_RUNNING is a 'waiting' state, asked again every LOCATE_POLL_MS; any other
   * error is retried like a server that is not up yet. `signal` is aborted by close(): a call still running
   * should stop then.
   */
  locate?: (signal: AbortSignal) => Promise<LocatedServer>;
  /** The port channel to use: SPICE_CHANNEL_WEBDAV (default). */
  channelType?: number;
  /** Its id; default the first one the server lists. */
  channelId?: number;
  /** Reconnection delays (default 500 ms doubling to 30 s). */
  reconnect?: BackoffOptions;
  /**
   * Optional check, run before each link, for other clients connected to the SPICE server (e.g. the CLI's
   * /proc scan). Returns a description such as "remote-viewer (pid 4242)" when one is, and we then wait
   * instead of linking, which would disconnect it.
   */
  viewerCheck?: (host: string, port: number | undefined) => Promise<string | undefined>;
}

/** How often a domain that is not running is asked about again: it is found this soon after it starts. */
const LOCATE_POLL_MS = 2000;
/** Longest wait between two `locate` attempts that failed for another reason (libvirtd down, virsh hung). */
const LOCATE_RETRY_MAX_MS = 5000;

/** How long after losing the server the takeover probe waits, so a QEMU being killed is not taken for a viewer. */
const PROBE_SETTLE_MS = 300;

// Errors that another attempt cannot fix: the user must change the command or the VM.
const FATAL = new Set([
  'HOST_ERR_DOMAIN_NOT_FOUND',
  'HOST_ERR_NO_SPICE_DISPLAY',
  'HOST_ERR_NO_VIRSH',
  'SPICE_ERR_WRONG_PASSWORD',
  'SPICE_ERR_PERMISSION_DENIED',
  'SPICE_ERR_PASSWORD_TOO_LONG',
  'SPICE_ERR_SASL_UNSUPPORTED',
  'SPICE_ERR_TLS',
  'SPICE_ERR_TLS_REQUIRED',
  'SPICE_ERR_TLS_NOT_ALLOWED',
  'SPICE_ERR_VERSION_MISMATCH',
  'SPICE_ERR_PROTOCOL',
]);

/**
 * The SPICE transport (see the file comment). A fatal error (wrong password, bad certificate, TLS required
 * without a TLS port...) ends it: state 'closed' with that error.
 */
export class SpiceTransport extends EventEmitter implements Transport {
  readonly #opts: SpiceTransportOptions;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #failures = new RepeatedFailure();
  readonly #abort = new AbortController();
  #state: TransportState = { state: 'closed', detail: 'not started' };
  #started = false;
  #running: Promise<void> = Promise.resolve();
  #session: SpiceSession | null = null;
  #link: LinkStream | null = null;
  /** Where the server is: from the options, or as `locate` last answered (with a password, if it gave one). */
  #address: LocatedServer | undefined;

  constructor(options: SpiceTransportOptions) {
    super();
    if (options.host === undefined && options.locate === undefined) throw new TypeError('SpiceTransport needs host (and port or tlsPort) or locate');
    this.#opts = options;
    if (options.host !== undefined) this.#address = { host: options.host, port: options.port, tlsPort: options.tlsPort };
    this.#log = options.log ?? silentLogger;
    this.#backoff = new Backoff(options.reconnect);
  }

  /** The latest state. */
  get state(): TransportState {
    return this.#state;
  }

  /** Start connecting; reconnects by itself until close(). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#running = this.#run().catch((err: unknown) => {
      this.#setState({ state: 'closed', error: err as Error, detail: String((err as Error).message) });
    });
  }

  /** Stop: close the SPICE session (the guest sees the host leave) and stop reconnecting. Idempotent. */
  async close(): Promise<void> {
    if (this.#abort.signal.aborted) return this.#running;
    this.#abort.abort();
    this.#endLink();
    await this.#session?.close();
    await this.#running;
    if (this.#state.state !== 'closed' || this.#state.error === undefined) this.#setState({ state: 'closed', detail: 'stopped' });
  }

  get #where(): string {
    if (this.#address === undefined) return 'the SPICE server';
    const { host, port, tlsPort } = this.#address;
    return port !== undefined ? `spice://${host}:${port}` : `spice+tls://${host}:${tlsPort}`;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      if (this.#opts.locate !== undefined) {
        try {
          this.#address = await this.#opts.locate(signal);
        } catch (err) {
          if (signal.aborted) break;
          if (FATAL.has((err as { code?: string }).code ?? '')) {
            this.#setState({ state: 'closed', error: err as Error, detail: (err as Error).message });
            return;
          }
          if (hasCode(err, 'HOST_ERR_DOMAIN_NOT_RUNNING')) {
            // Expected while the VM is off: a waiting state (said once, as long as it stays the same), no warning,
            // and a steady poll that leaves the connection backoff alone for when it starts.
            this.#setState({ state: 'waiting', detail: (err as Error).message, error: err as Error });
            await this.#sleep(LOCATE_POLL_MS);
          } else {
            await this.#retry(err as Error, Math.min(this.#backoff.next(), LOCATE_RETRY_MAX_MS));
          }
          continue;
        }
      }
      const viewer = await this.#viewer();
      if (viewer !== undefined) {
        const error = new HostError('HOST_ERR_VIEWER_CONNECTED', `${viewer} is connected to ${this.#where}. ${ONE_CLIENT_HOWTO}`);
        this.#setState({ state: 'waiting', detail: `a viewer holds the VM (${viewer})`, error });
        await this.#sleep(this.#backoff.maxDelayMs);
        continue;
      }
      this.#setState({ state: 'connecting', detail: `connecting to ${this.#where}` });
      let session: SpiceSession;
      try {
        session = await connectSpice({ ...this.#opts, ...this.#address!, signal });
      } catch (err) {
        if (signal.aborted) break;
        if (FATAL.has((err as { code?: string }).code ?? '')) {
          this.#setState({ state: 'closed', error: err as Error, detail: (err as Error).message });
          return;
        }
        await this.#afterLoss(err as Error);
        continue;
      }
      if (signal.aborted) {
        await session.close();
        break;
      }
      this.#session = session;
      this.#failures.reset();
      const lost = await this.#serve(session);
      this.#session = null;
      this.#endLink();
      if (signal.aborted || lost === undefined) break;
      await this.#afterLoss(lost);
    }
  }

  /** Run one SPICE session until it ends; resolves with why (undefined when we closed it). */
  #serve(session: SpiceSession): Promise<Error | undefined> {
    return new Promise<Error | undefined>((resolve) => {
      let port: SpicePortChannel | null = null;
      let opening = false;
      const type = this.#opts.channelType ?? SPICE_CHANNEL_WEBDAV;
      const tryOpen = () => {
        if (port !== null || opening || this.#abort.signal.aborted) return;
        const entry = session.channels.find((c) => c.type === type && (this.#opts.channelId === undefined || c.id === this.#opts.channelId));
        if (entry === undefined) {
          const error = new HostError('HOST_ERR_NO_WEBDAV_PORT', `the VM at ${this.#where} has no ${SPICE_WEBDAV_PORT_NAME} port: ${WEBDAV_PORT_HOWTO}`);
          this.#setState({ state: 'waiting', detail: `the VM has no ${SPICE_WEBDAV_PORT_NAME} port`, error });
          return;
        }
        opening = true;
        session.openPort(entry.type, entry.id).then(
          (p) => {
            opening = false;
            port = p;
            p.on('opened', () => this.#startLink(p));
            p.on('closed', (reason: string) => {
              this.#endLink();
              this.#waitingForGuest(reason === 'break' ? 'the guest port signalled a break' : 'the guest closed the port');
            });
            p.once('close', (err?: Error) => {
              // The webdav channel alone going away ends the session too, so that the next one starts clean.
              void session.destroy(err);
            });
            if (p.opened) this.#startLink(p);
            else this.#waitingForGuest('webdav channel linked');
          },
          (err: Error) => {
            opening = false;
            void session.destroy(err);
          },
        );
      };
      session.on('channels', tryOpen);
      session.once('close', (err?: Error) => resolve(this.#abort.signal.aborted ? undefined : (err ?? new HostError('HOST_ERR_CLOSED', 'the SPICE session ended'))));
      tryOpen();
    });
  }

  #startLink(port: SpicePortChannel): void {
    this.#endLink();
    this.#backoff.reset();
    const link = new LinkStream(port.stream);
    this.#link = link;
    link.once('close', () => {
      if (this.#link !== link) return;
      // The mux session gave the link up (a framing error) while the port stays open: a new session could only
      // start mid-frame, so, like spice-gtk, wait for the guest to reopen the port.
      this.#link = null;
      this.#waitingForGuest('the mux session over the port ended');
    });
    this.#setState({ state: 'linked', detail: `guest attached through ${this.#where}` });
    this.emit('link', link);
  }

  #endLink(): void {
    const link = this.#link;
    this.#link = null;
    link?.detach();
  }

  #waitingForGuest(why: string): void {
    this.#setState({
      state: 'waiting',
      detail: `${why}; waiting for the guest to open ${SPICE_WEBDAV_PORT_NAME} (is spice-webdavd or spicedav guest running in the VM?)`,
    });
  }

  /** Retry after a failed attempt or a lost session, telling a takeover by another client from a server gone. */
  async #afterLoss(err: Error): Promise<void> {
    // A server that still accepts connections but dropped us (during or after the link) did it on purpose:
    // almost always because another client (a viewer) linked, which disconnects the current one. Re-linking at
    // once would kick it out in turn, so wait the longest delay instead. A stopped QEMU refuses the probe — but
    // not at once: our connection drops while the dying process still holds its listening socket, so the probe
    // waits a moment first (a viewer's server keeps accepting; a dead one is gone by then).
    if (hasCode(err, 'SPICE_ERR_CONNECTION_LOST')) {
      await this.#sleep(PROBE_SETTLE_MS);
      // close() during the wait (the VM was shut down on purpose): nothing to retry or to warn about.
      if (this.#abort.signal.aborted) return;
      if (await this.#serverUp()) {
        const error = new HostError('HOST_ERR_VIEWER_CONNECTED', `the SPICE server at ${this.#where} dropped spicedav, most likely for another client. ${ONE_CLIENT_HOWTO}`, { cause: err });
        await this.#retry(error, this.#backoff.maxDelayMs);
        return;
      }
    }
    await this.#retry(err, this.#backoff.next());
  }

  async #retry(error: Error, delay: number): Promise<void> {
    this.#setState(this.#failures.retrying(error, delay, this.#log));
    await this.#sleep(delay);
  }

  /** A bare TCP connect (no SPICE link, which would disconnect the current client), bounded to 1 s. */
  #serverUp(): Promise<boolean> {
    const { host, port, tlsPort } = this.#address!;
    return new Promise((resolve) => {
      const s = netConnect({ host, port: (port ?? tlsPort) as number });
      const done = (up: boolean) => {
        clearTimeout(timer);
        s.destroy();
        resolve(up);
      };
      const timer = setTimeout(() => done(false), 1000);
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
    });
  }

  async #viewer(): Promise<string | undefined> {
    if (!this.#opts.viewerCheck) return undefined;
    try {
      const { host, port, tlsPort } = this.#address!;
      return await this.#opts.viewerCheck(host, port ?? tlsPort);
    } catch {
      return undefined;
    }
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#abort.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });
  }

  #setState(state: TransportState): void {
    this.#state = state;
    this.emit('state', state);
  }
}
