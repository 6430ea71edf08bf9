/**
 * spicedav's public library API: `import { ... } from 'spicedav'`.
 * Each layer exports its entry points here; internals stay internal.
 */
export { SpicedavError, hasCode } from './errors.js';
export { createLogger, silentLogger } from './log.js';
export type { Logger, CreateLoggerOptions } from './log.js';
export {
  MuxSession,
  MuxChannel,
  MuxError,
  FrameDecoder,
  encodeFrame,
  encodeClose,
  assertClientId,
  FRAME_HEADER_SIZE,
  MAX_FRAME_PAYLOAD,
  MIN_CLIENT_ID,
  MAX_CLIENT_ID,
  DEFAULT_MAX_CHANNEL_BUFFER,
  DEFAULT_MAX_SESSION_BUFFER,
  DEFAULT_MAX_CHANNELS,
  DEFAULT_CHANNEL_HIGH_WATER_MARK,
} from '../mux/index.js';
export type {
  MuxRole,
  MuxSessionOptions,
  MuxSessionEvents,
  MuxStats,
  MuxErrorCode,
  OverflowPolicy,
  FrameHandler,
  FrameDecoderOptions,
} from '../mux/index.js';
export { connectSpice, parseSpiceUri, SpiceSession, SpicePortChannel, SpiceError, SPICE_CHANNEL_WEBDAV } from './spice/index.js';
export type { ConnectSpiceOptions, SpiceAddress, SpiceEndpoint, SpiceTlsOptions, SpiceErrorCode, PortCloseReason } from './spice/index.js';
export { Share, SpiceTransport, QemuSocketTransport, MemoryTransport, createMemoryTransport, HostError, DomainLocator } from './host/index.js';
export type {
  ShareOptions,
  ShareStats,
  Transport,
  TransportState,
  TransportStateName,
  SpiceTransportOptions,
  QemuSocketTransportOptions,
  MemoryPortDevice,
  HostErrorCode,
  DomainLocatorOptions,
} from './host/index.js';
export {
  GuestProxy,
  GuestError,
  GuestErrorCode,
  VirtioPortDevice,
  UnixSocketPortDevice,
  AvahiAdvertiser,
  portDeviceFromSpec,
  DEFAULT_GUEST_PORT,
  DEFAULT_GUEST_HOSTS,
  DEFAULT_WAIT_FOR_HOST,
  DEFAULT_PORT_PATH,
  LINUX_PORT_PATH,
  WINDOWS_PORT_PATH,
} from './guest/index.js';
export type {
  GuestProxyOptions,
  GuestProxyState,
  GuestProxyStateEvent,
  GuestProxyStats,
  GuestConnectionEvent,
  GuestDisconnectEvent,
  PortDevice,
  PortDeviceOptions,
  VirtioPortDeviceOptions,
  UnixSocketPortDeviceOptions,
  MdnsAdvertiser,
} from './guest/index.js';
export { DavServer, DavError, Transfer, DEFAULT_LIMITS, defaultStateFile, BasicAuth, DigestAuth, followUserFile } from '../dav/index.js';
export type { DavServerOptions, DavLimits, ListenOptions, SymlinkPolicy, Authenticator, FileAuthenticator, Refusal, UserFileFollower, DavCondition, DigestAuthOptions, LoginThrottleOptions } from '../dav/index.js';
