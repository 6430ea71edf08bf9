/**
 * `spicedav guest`, the drop-in for phodav's spice-webdavd: the loopback TCP listener, the port devices it runs
 * the guest-role mux over, and the mDNS advertisement. Contract: docs/DEVELOPING.md; user guide: docs/guest.md.
 */
export {
  GuestProxy,
  DEFAULT_GUEST_PORT,
  DEFAULT_GUEST_HOSTS,
  DEFAULT_WAIT_FOR_HOST,
  DEFAULT_MAX_WAITING_CONNECTIONS,
  type GuestProxyOptions,
  type GuestProxyState,
  type GuestProxyStateEvent,
  type GuestProxyStats,
  type GuestProxyEvents,
  type GuestConnectionEvent,
  type GuestDisconnectEvent,
} from './proxy.js';
export { GuestError, GuestErrorCode } from './errors.js';
export { LINUX_PORT_PATH, WINDOWS_PORT_PATH, DEFAULT_PORT_PATH, type PortDevice, type PortDeviceOptions } from './port-device.js';
export { portDeviceFromSpec } from './device-spec.js';
export { VirtioPortDevice, type VirtioPortDeviceOptions } from './virtio-port-device.js';
export { UnixSocketPortDevice, type UnixSocketPortDeviceOptions } from './unix-socket-port-device.js';
export {
  AvahiAdvertiser,
  MDNS_SERVICE_NAME,
  MDNS_SERVICE_TYPE,
  MDNS_TXT,
  type MdnsAdvertiser,
  type AvahiAdvertiserOptions,
} from './mdns.js';
