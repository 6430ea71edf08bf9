/**
 * The SPICE client: connect to a VM's SPICE server, link the main channel and open port channels (the webdav
 * channel) whose bytes are a Duplex. See docs/DEVELOPING.md "SPICE" for the contract.
 */
export { connectSpice, type ConnectSpiceOptions } from './client.js';
export { SpiceSession } from './main-channel.js';
export { SpicePortChannel, type PortCloseReason, type SpicePortChannelOptions } from './port-channel.js';
export type { SpiceEndpoint } from './channel-connection.js';
export type { SpiceTlsOptions } from './tls.js';
export { parseSpiceUri, type SpiceAddress } from './uri.js';
export { SpiceError, type SpiceErrorCode } from './errors.js';
export { SpiceChannelProtocol, ChannelState, type ChannelProtocolOptions, type MessageHandler } from './channel.js';
export type { ChannelId } from './messages.js';
export * as spiceConstants from './constants.js';
export { SPICE_CHANNEL_WEBDAV, SPICE_CHANNEL_PORT, SPICE_WEBDAV_PORT_NAME, SPICE_MAX_PASSWORD_LENGTH } from './constants.js';
