/**
 * spicedav's public library API: `import { ... } from 'spicedav'`.
 * Each layer exports its entry points here; internals stay internal.
 */
export { SpicedavError, hasCode } from './errors.js';
export { createLogger, silentLogger } from './log.js';
export type { Logger, CreateLoggerOptions } from './log.js';
export { connectSpice, SpiceSession, SpicePortChannel, SpiceError, SPICE_CHANNEL_WEBDAV } from './spice/index.js';
export type { ConnectSpiceOptions, SpiceEndpoint, SpiceTlsOptions, SpiceErrorCode, PortCloseReason } from './spice/index.js';
export { Share, SpiceTransport, QemuSocketTransport, MemoryTransport, createMemoryTransport, HostError } from './host/index.js';
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
} from './host/index.js';
