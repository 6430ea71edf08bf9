import { readFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { DbusConnection } from './dbus.js';

/** Announces the proxy on mDNS while a host is attached. The proxy calls publish/withdraw; close() at the end. */
export interface MdnsAdvertiser {
  /** Advertise the share on `port` (called when a host attaches). */
  publish(port: number): Promise<void>;
  /** Withdraw the record (called when the host leaves). */
  withdraw(): Promise<void>;
  /** Withdraw and release everything. */
  close(): Promise<void>;
}

/** What spice-webdavd publishes (GNOME/phodav bin/avahi-common.c), so GNOME Files shows the same entry. */
export const MDNS_SERVICE_NAME = 'Spice client folder';
/** The DNS-SD service type of WebDAV over plain HTTP. */
export const MDNS_SERVICE_TYPE = '_webdav._tcp';
/** TXT record: no user, no password, share at the root (RFC 6763 §6, as spice-webdavd). */
export const MDNS_TXT: readonly string[] = ['u=', 'p=', 'path=/'];

const AVAHI = 'org.freedesktop.Avahi';
const AVAHI_PROTO_UNSPEC = -1;

/** Options of {@link AvahiAdvertiser}. */
export interface AvahiAdvertiserOptions {
  /** System bus socket path (default: `DBUS_SYSTEM_BUS_ADDRESS` or /var/run/dbus/system_bus_socket). */
  busPath?: string;
  /** Interface to publish on (default `lo`: the proxy only listens there, so advertising elsewhere would lie). */
  interfaceName?: string;
  log?: Logger;
}

/**
 * Publishes `_webdav._tcp` "Spice client folder" (TXT u= p= path=/) through avahi-daemon's D-Bus API, on the
 * loopback interface only (as spice-webdavd since phodav commit 62ac0a7). Never a hard dependency: without a
 * system bus or avahi-daemon, `available()` is false and `publish()` rejects, and the proxy works on.
 * The record lives in an avahi entry group that belongs to our D-Bus connection; withdraw() frees the group.
 */
export class AvahiAdvertiser implements MdnsAdvertiser {
  readonly #busPath: string | undefined;
  readonly #ifname: string;
  readonly #log: Logger;
  #bus: DbusConnection | undefined;
  #group: string | undefined;

  constructor(options: AvahiAdvertiserOptions = {}) {
    this.#busPath = options.busPath;
    this.#ifname = options.interfaceName ?? 'lo';
    this.#log = (options.log ?? silentLogger).child({ component: 'mdns' });
  }

  /** True when avahi-daemon answers on the system bus. */
  async available(): Promise<boolean> {
    try {
      const bus = await this.#connect();
      await bus.call(AVAHI, '/', `${AVAHI}.Server`, 'GetVersionString');
      return true;
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'avahi not available');
      return false;
    }
  }

  /** Adds the service record in a new entry group and commits it. */
  async publish(port: number): Promise<void> {
    await this.withdraw();
    const bus = await this.#connect();
    const ifindex = Number((await readFile(`/sys/class/net/${this.#ifname}/ifindex`, 'utf8')).trim());
    const [group] = (await bus.call(AVAHI, '/', `${AVAHI}.Server`, 'EntryGroupNew')) as [string];
    this.#group = group;
    const txt = MDNS_TXT.map((t) => Buffer.from(t));
    await bus.call(AVAHI, group, `${AVAHI}.EntryGroup`, 'AddService', 'iiussssqaay', [
      ifindex, AVAHI_PROTO_UNSPEC, 0, MDNS_SERVICE_NAME, MDNS_SERVICE_TYPE, '', '', port, txt,
    ]);
    await bus.call(AVAHI, group, `${AVAHI}.EntryGroup`, 'Commit');
    this.#log.info({ name: MDNS_SERVICE_NAME, type: MDNS_SERVICE_TYPE, port, interface: this.#ifname }, 'advertised over mDNS');
  }

  /** Frees the entry group, which withdraws the record. */
  async withdraw(): Promise<void> {
    const group = this.#group;
    this.#group = undefined;
    if (!group || !this.#bus || this.#bus.closed) return;
    await this.#bus.call(AVAHI, group, `${AVAHI}.EntryGroup`, 'Free');
    this.#log.info({}, 'mDNS record withdrawn');
  }

  async close(): Promise<void> {
    await this.withdraw().catch(() => {});
    this.#bus?.close();
    this.#bus = undefined;
  }

  async #connect(): Promise<DbusConnection> {
    // A bus connection that dropped (dbus or avahi restarted) took our entry group with it: start afresh.
    if (!this.#bus || this.#bus.closed) {
      this.#group = undefined;
      this.#bus = await DbusConnection.connect(this.#busPath);
    }
    return this.#bus;
  }
}
