/**
 * SPICE protocol numbers, named exactly as in freedesktop/spice-protocol `spice/protocol.h` and
 * `spice/enums.h` (0.14.x), so that a grep for a name finds both this file and the C headers.
 * Only the values a webdav client needs are here; see ../shared/docs/protocol.md §c.5 for the tables.
 */

/** The link header magic `REDQ` read as a little-endian u32 (`SPICE_MAGIC`). */
export const SPICE_MAGIC = 0x51444552;
/** Protocol version we speak (`SPICE_VERSION_MAJOR`/`SPICE_VERSION_MINOR`). */
export const SPICE_VERSION_MAJOR = 2;
export const SPICE_VERSION_MINOR = 2;

/** `SPICE_TICKET_PUBKEY_BYTES` = 1024/8 + 34: the DER SubjectPublicKeyInfo of the server's RSA-1024 key. */
export const SPICE_TICKET_PUBKEY_BYTES = 162;
/** `SPICE_TICKET_KEY_PAIR_LENGTH` = 1024: RSA modulus bits, so the encrypted ticket is 128 bytes. */
export const SPICE_TICKET_KEY_PAIR_LENGTH = 1024;
/** `SPICE_MAX_PASSWORD_LENGTH`: spice-gtk refuses longer passwords, the ticket could not hold them. */
export const SPICE_MAX_PASSWORD_LENGTH = 60;

// Channel types (enum SpiceChannelType).
export const SPICE_CHANNEL_MAIN = 1;
export const SPICE_CHANNEL_DISPLAY = 2;
export const SPICE_CHANNEL_INPUTS = 3;
export const SPICE_CHANNEL_CURSOR = 4;
export const SPICE_CHANNEL_PLAYBACK = 5;
export const SPICE_CHANNEL_RECORD = 6;
export const SPICE_CHANNEL_TUNNEL = 7;
export const SPICE_CHANNEL_SMARTCARD = 8;
export const SPICE_CHANNEL_USBREDIR = 9;
export const SPICE_CHANNEL_PORT = 10;
export const SPICE_CHANNEL_WEBDAV = 11;

// Link errors (enum SpiceLinkErr), the u32 in SpiceLinkReply.error and in the final link result.
export const SPICE_LINK_ERR_OK = 0;
export const SPICE_LINK_ERR_ERROR = 1;
export const SPICE_LINK_ERR_INVALID_MAGIC = 2;
export const SPICE_LINK_ERR_INVALID_DATA = 3;
export const SPICE_LINK_ERR_VERSION_MISMATCH = 4;
export const SPICE_LINK_ERR_NEED_SECURED = 5;
export const SPICE_LINK_ERR_NEED_UNSECURED = 6;
export const SPICE_LINK_ERR_PERMISSION_DENIED = 7;
export const SPICE_LINK_ERR_BAD_CONNECTION_ID = 8;
export const SPICE_LINK_ERR_CHANNEL_NOT_AVAILABLE = 9;

// Common capabilities (bit numbers in the common caps words).
export const SPICE_COMMON_CAP_PROTOCOL_AUTH_SELECTION = 0;
export const SPICE_COMMON_CAP_AUTH_SPICE = 1;
export const SPICE_COMMON_CAP_AUTH_SASL = 2;
export const SPICE_COMMON_CAP_MINI_HEADER = 3;

/** The only SPICEVMC channel capability; a webdav client never advertises it (§c.5). */
export const SPICE_SPICEVMC_CAP_DATA_COMPRESS_LZ4 = 0;

// Messages every channel understands, server → client (BaseChannel in spice.proto).
export const SPICE_MSG_MIGRATE = 1;
export const SPICE_MSG_MIGRATE_DATA = 2;
export const SPICE_MSG_SET_ACK = 3;
export const SPICE_MSG_PING = 4;
export const SPICE_MSG_WAIT_FOR_CHANNELS = 5;
export const SPICE_MSG_DISCONNECTING = 6;
export const SPICE_MSG_NOTIFY = 7;
export const SPICE_MSG_LIST = 8;

// Messages every channel understands, client → server.
export const SPICE_MSGC_ACK_SYNC = 1;
export const SPICE_MSGC_ACK = 2;
export const SPICE_MSGC_PONG = 3;
export const SPICE_MSGC_MIGRATE_FLUSH_MARK = 4;
export const SPICE_MSGC_MIGRATE_DATA = 5;
export const SPICE_MSGC_DISCONNECTING = 6;

// Main channel, server → client.
export const SPICE_MSG_MAIN_MIGRATE_BEGIN = 101;
export const SPICE_MSG_MAIN_MIGRATE_CANCEL = 102;
export const SPICE_MSG_MAIN_INIT = 103;
export const SPICE_MSG_MAIN_CHANNELS_LIST = 104;
export const SPICE_MSG_MAIN_MOUSE_MODE = 105;
export const SPICE_MSG_MAIN_MULTI_MEDIA_TIME = 106;
export const SPICE_MSG_MAIN_AGENT_CONNECTED = 107;
export const SPICE_MSG_MAIN_AGENT_DISCONNECTED = 108;
export const SPICE_MSG_MAIN_AGENT_DATA = 109;
export const SPICE_MSG_MAIN_AGENT_TOKEN = 110;
export const SPICE_MSG_MAIN_MIGRATE_SWITCH_HOST = 111;
export const SPICE_MSG_MAIN_MIGRATE_END = 112;
export const SPICE_MSG_MAIN_NAME = 113;
export const SPICE_MSG_MAIN_UUID = 114;
export const SPICE_MSG_MAIN_AGENT_CONNECTED_TOKENS = 115;
export const SPICE_MSG_MAIN_MIGRATE_BEGIN_SEAMLESS = 116;
export const SPICE_MSG_MAIN_MIGRATE_DST_SEAMLESS_ACK = 117;
export const SPICE_MSG_MAIN_MIGRATE_DST_SEAMLESS_NACK = 118;

// Main channel, client → server.
export const SPICE_MSGC_MAIN_ATTACH_CHANNELS = 104;

// SPICEVMC (port, webdav, usbredir) channels.
export const SPICE_MSG_SPICEVMC_DATA = 101;
export const SPICE_MSG_SPICEVMC_COMPRESSED_DATA = 102;
export const SPICE_MSGC_SPICEVMC_DATA = 101;
export const SPICE_MSGC_SPICEVMC_COMPRESSED_DATA = 102;

// Port channels (and WebDAVChannel : PortChannel).
export const SPICE_MSG_PORT_INIT = 201;
export const SPICE_MSG_PORT_EVENT = 202;
export const SPICE_MSGC_PORT_EVENT = 201;

// Port events (enum SpicePortEvent).
export const SPICE_PORT_EVENT_OPENED = 0;
export const SPICE_PORT_EVENT_CLOSED = 1;
export const SPICE_PORT_EVENT_BREAK = 2;

// NOTIFY severities (enum SpiceNotifySeverity).
export const SPICE_NOTIFY_SEVERITY_INFO = 0;
export const SPICE_NOTIFY_SEVERITY_WARN = 1;
export const SPICE_NOTIFY_SEVERITY_ERROR = 2;

/** The virtio-serial port name the SPICE server maps to SPICE_CHANNEL_WEBDAV (freedesktop/spice reds.cpp). */
export const SPICE_WEBDAV_PORT_NAME = 'org.spice-space.webdav.0';
