/**
 * The host side of `spicedav share`: transports that reach the guest's webdav port (SPICE, QEMU chardev
 * socket, in memory) and `Share`, which serves a DavServer through them. Contract: docs/DEVELOPING.md "host".
 */
export { Share, type ShareOptions, type ShareStats, type ConnectionHandler } from './share.js';
export type { Transport, TransportEvents, TransportState, TransportStateName } from './transport.js';
export { SpiceTransport, type SpiceTransportOptions } from './transports/spice.js';
export { QemuSocketTransport, type QemuSocketTransportOptions } from './transports/qemu-socket.js';
export { MemoryTransport, createMemoryTransport, type MemoryPortDevice } from './transports/memory.js';
export { DomainLocator, runVirsh, virshRunner, runningDomains, LIBVIRT_SYSTEM_URI, type DomainLocatorOptions, type VirshRunner, type VirshResult } from './libvirt.js';
export { parseDomDisplay, remoteHostOf, type DomainSpiceAddress } from './domdisplay.js';
export { LinkStream } from './link-stream.js';
export { Backoff, type BackoffOptions, DEFAULT_INITIAL_DELAY_MS, DEFAULT_MAX_DELAY_MS } from './backoff.js';
export { HostError, type HostErrorCode, WEBDAV_PORT_HOWTO, ONE_CLIENT_HOWTO } from './errors.js';
