/**
 * The WebDAV server layer: `DavServer` and what its users need (options, limits, errors, transfer events,
 * authenticators).
 */
export { DavServer, defaultStateFile } from './server.js';
export type { ListenOptions } from './server.js';
export { DEFAULT_LIMITS } from './options.js';
export type { DavServerOptions, DavLimits } from './options.js';
export { DavError } from './errors.js';
export type { DavCondition } from './errors.js';
export { Transfer } from './transfer.js';
export type { SymlinkPolicy } from './paths.js';
export type { Authenticator, FileAuthenticator, Refusal } from './auth/authenticator.js';
export { BasicAuth } from './auth/basic.js';
export { DigestAuth } from './auth/digest.js';
export type { DigestAuthOptions } from './auth/digest.js';
export { followUserFile } from './auth/user-file.js';
export type { UserFileFollower } from './auth/user-file.js';
export type { LoginThrottleOptions } from './auth/login-throttle.js';
