/**
 * Pure codecs for the SPICE messages a webdav client sends or receives after the link stage. Each codec turns a
 * message body (the bytes after the data header) into a typed object and back; the wire layout, from
 * freedesktop/spice-common `spice.proto` and freedesktop/spice-protocol `spice/protocol.h`, sits above it.
 * All integers are little-endian and all structs packed. Decoders reject short bodies with
 * `SPICE_ERR_PROTOCOL`; extra trailing bytes are tolerated, as the server's demarshaller does.
 */
import { SpiceError } from './errors.js';

/** A codec for one message body: `decode(body)` and `encode(msg)`, with the fixed size of its body part. */
export interface MessageCodec<T> {
  /** Bytes of the fixed part of the body (variable parts come after it). */
  readonly size: number;
  decode(body: Buffer): T;
  encode(msg: T): Buffer;
}

function need(body: Buffer, size: number, what: string): void {
  if (body.length < size) {
    throw new SpiceError('SPICE_ERR_PROTOCOL', `malformed ${what}: ${body.length} bytes, need at least ${size}`);
  }
}

/** A data header: which message follows and how long its body is. */
export interface DataHeader {
  type: number;
  size: number;
}

/**
 * SpiceMiniDataHeader (6 bytes), used when both sides advertised SPICE_COMMON_CAP_MINI_HEADER:
 * ```
 * u16 type | u32 size (body bytes)
 * ```
 */
export const MiniDataHeader: MessageCodec<DataHeader> = {
  size: 6,
  decode(buf) {
    need(buf, 6, 'mini data header');
    return { type: buf.readUInt16LE(0), size: buf.readUInt32LE(2) };
  },
  encode(h) {
    const buf = Buffer.allocUnsafe(6);
    buf.writeUInt16LE(h.type, 0);
    buf.writeUInt32LE(h.size, 2);
    return buf;
  },
};

/** A full data header, with the per-direction serial and the sub-message list offset. */
export interface FullHeader extends DataHeader {
  serial: bigint;
  subList: number;
}

/**
 * SpiceDataHeader (18 bytes), used only with servers that do not offer the mini header:
 * ```
 * u64 serial (1, 2, ... per direction) | u16 type | u32 size | u32 sub_list (offset, 0 = none)
 * ```
 */
export const FullDataHeader: MessageCodec<FullHeader> = {
  size: 18,
  decode(buf) {
    need(buf, 18, 'data header');
    return { serial: buf.readBigUInt64LE(0), type: buf.readUInt16LE(8), size: buf.readUInt32LE(10), subList: buf.readUInt32LE(14) };
  },
  encode(h) {
    const buf = Buffer.allocUnsafe(18);
    buf.writeBigUInt64LE(h.serial, 0);
    buf.writeUInt16LE(h.type, 8);
    buf.writeUInt32LE(h.size, 10);
    buf.writeUInt32LE(h.subList, 14);
    return buf;
  },
};

/** SPICE_MSG_SET_ACK: the server wants an ACK every `window` messages. */
export interface SetAck {
  generation: number;
  window: number;
}

/**
 * SPICE_MSG_SET_ACK (3):
 * ```
 * u32 generation | u32 window
 * ```
 */
export const SetAckMessage: MessageCodec<SetAck> = {
  size: 8,
  decode(buf) {
    need(buf, 8, 'SET_ACK');
    return { generation: buf.readUInt32LE(0), window: buf.readUInt32LE(4) };
  },
  encode(m) {
    const buf = Buffer.allocUnsafe(8);
    buf.writeUInt32LE(m.generation, 0);
    buf.writeUInt32LE(m.window, 4);
    return buf;
  },
};

/**
 * SPICE_MSGC_ACK_SYNC (1), the answer to SET_ACK:
 * ```
 * u32 generation
 * ```
 */
export const AckSyncMessage: MessageCodec<{ generation: number }> = {
  size: 4,
  decode(buf) {
    need(buf, 4, 'ACK_SYNC');
    return { generation: buf.readUInt32LE(0) };
  },
  encode(m) {
    const buf = Buffer.allocUnsafe(4);
    buf.writeUInt32LE(m.generation, 0);
    return buf;
  },
};

/** SPICE_MSG_PING: `payloadLength` counts the padding bytes after the fixed part (the network test sends 250 KiB). */
export interface Ping {
  id: number;
  timestamp: bigint;
  payloadLength: number;
}

/**
 * SPICE_MSG_PING (4):
 * ```
 * u32 id | u64 timestamp | u8 data[] (to the end of the body; ignored)
 * ```
 * `encode` writes zero-filled padding of `payloadLength` bytes.
 */
export const PingMessage: MessageCodec<Ping> = {
  size: 12,
  decode(buf) {
    need(buf, 12, 'PING');
    return { id: buf.readUInt32LE(0), timestamp: buf.readBigUInt64LE(4), payloadLength: buf.length - 12 };
  },
  encode(m) {
    const buf = Buffer.alloc(12 + m.payloadLength);
    buf.writeUInt32LE(m.id, 0);
    buf.writeBigUInt64LE(m.timestamp, 4);
    return buf;
  },
};

/** SPICE_MSGC_PONG: echoes a PING's id and timestamp. */
export interface Pong {
  id: number;
  timestamp: bigint;
}

/**
 * SPICE_MSGC_PONG (3):
 * ```
 * u32 id | u64 timestamp
 * ```
 */
export const PongMessage: MessageCodec<Pong> = {
  size: 12,
  decode(buf) {
    need(buf, 12, 'PONG');
    return { id: buf.readUInt32LE(0), timestamp: buf.readBigUInt64LE(4) };
  },
  encode(m) {
    const buf = Buffer.allocUnsafe(12);
    buf.writeUInt32LE(m.id, 0);
    buf.writeBigUInt64LE(m.timestamp, 4);
    return buf;
  },
};

/** SPICE_MSG_DISCONNECTING / SPICE_MSGC_DISCONNECTING: the sender is about to close the channel. */
export interface Disconnecting {
  timeStamp: bigint;
  /** A SpiceLinkErr value. */
  reason: number;
}

/**
 * SPICE_MSG_DISCONNECTING (6) and SPICE_MSGC_DISCONNECTING (6):
 * ```
 * u64 time_stamp | u32 reason (SpiceLinkErr)
 * ```
 */
export const DisconnectingMessage: MessageCodec<Disconnecting> = {
  size: 12,
  decode(buf) {
    need(buf, 12, 'DISCONNECTING');
    return { timeStamp: buf.readBigUInt64LE(0), reason: buf.readUInt32LE(8) };
  },
  encode(m) {
    const buf = Buffer.allocUnsafe(12);
    buf.writeBigUInt64LE(m.timeStamp, 0);
    buf.writeUInt32LE(m.reason, 8);
    return buf;
  },
};

/** SPICE_MSG_NOTIFY: a message from the server meant for the user. */
export interface Notify {
  timeStamp: bigint;
  /** SPICE_NOTIFY_SEVERITY_INFO/WARN/ERROR. */
  severity: number;
  /** 0 low, 1 medium, 2 high. */
  visibility: number;
  what: number;
  message: string;
}

/**
 * SPICE_MSG_NOTIFY (7):
 * ```
 * u64 time_stamp | u32 severity | u32 visibility | u32 what | u32 message_len | u8 message[message_len]
 * ```
 * The message may carry a trailing NUL, which is dropped.
 */
export const NotifyMessage: MessageCodec<Notify> = {
  size: 24,
  decode(buf) {
    need(buf, 24, 'NOTIFY');
    const len = buf.readUInt32LE(20);
    need(buf, 24 + len, 'NOTIFY message');
    return {
      timeStamp: buf.readBigUInt64LE(0),
      severity: buf.readUInt32LE(8),
      visibility: buf.readUInt32LE(12),
      what: buf.readUInt32LE(16),
      message: buf.toString('utf8', 24, 24 + len).replace(/\0+$/, ''),
    };
  },
  encode(m) {
    const text = Buffer.from(m.message, 'utf8');
    const buf = Buffer.allocUnsafe(24 + text.length);
    buf.writeBigUInt64LE(m.timeStamp, 0);
    buf.writeUInt32LE(m.severity, 8);
    buf.writeUInt32LE(m.visibility, 12);
    buf.writeUInt32LE(m.what, 16);
    buf.writeUInt32LE(text.length, 20);
    text.copy(buf, 24);
    return buf;
  },
};

/** SPICE_MSG_MAIN_INIT: the session's parameters; `sessionId` is the connection_id of every other channel. */
export interface MainInit {
  sessionId: number;
  displayChannelsHint: number;
  supportedMouseModes: number;
  currentMouseMode: number;
  agentConnected: number;
  agentTokens: number;
  multiMediaTime: number;
  ramHint: number;
}

/**
 * SPICE_MSG_MAIN_INIT (103), 8 × u32:
 * ```
 * session_id | display_channels_hint | supported_mouse_modes | current_mouse_mode |
 * agent_connected | agent_tokens | multi_media_time | ram_hint
 * ```
 */
export const MainInitMessage: MessageCodec<MainInit> = {
  size: 32,
  decode(buf) {
    need(buf, 32, 'MAIN_INIT');
    return {
      sessionId: buf.readUInt32LE(0),
      displayChannelsHint: buf.readUInt32LE(4),
      supportedMouseModes: buf.readUInt32LE(8),
      currentMouseMode: buf.readUInt32LE(12),
      agentConnected: buf.readUInt32LE(16),
      agentTokens: buf.readUInt32LE(20),
      multiMediaTime: buf.readUInt32LE(24),
      ramHint: buf.readUInt32LE(28),
    };
  },
  encode(m) {
    const buf = Buffer.allocUnsafe(32);
    const fields = [m.sessionId, m.displayChannelsHint, m.supportedMouseModes, m.currentMouseMode, m.agentConnected, m.agentTokens, m.multiMediaTime, m.ramHint];
    fields.forEach((v, i) => buf.writeUInt32LE(v, i * 4));
    return buf;
  },
};

/** One entry of CHANNELS_LIST: a channel the client may link. */
export interface ChannelId {
  type: number;
  id: number;
}

/**
 * SPICE_MSG_MAIN_CHANNELS_LIST (104):
 * ```
 * u32 num_of_channels | num_of_channels × { u8 type | u8 id }
 * ```
 */
export const ChannelsListMessage: MessageCodec<ChannelId[]> = {
  size: 4,
  decode(buf) {
    need(buf, 4, 'CHANNELS_LIST');
    const n = buf.readUInt32LE(0);
    need(buf, 4 + 2 * n, 'CHANNELS_LIST entries');
    const list: ChannelId[] = [];
    for (let i = 0; i < n; i++) list.push({ type: buf.readUInt8(4 + 2 * i), id: buf.readUInt8(5 + 2 * i) });
    return list;
  },
  encode(list) {
    const buf = Buffer.allocUnsafe(4 + 2 * list.length);
    buf.writeUInt32LE(list.length, 0);
    list.forEach((c, i) => {
      buf.writeUInt8(c.type, 4 + 2 * i);
      buf.writeUInt8(c.id, 5 + 2 * i);
    });
    return buf;
  },
};

/** SPICE_MSG_PORT_INIT: the port's name and whether the guest has it open. */
export interface PortInit {
  name: string;
  opened: boolean;
}

/**
 * SPICE_MSG_PORT_INIT (201):
 * ```
 * u32 name_size (bytes incl. NUL) | u32 name (offset from the body start; 9 in practice) | u8 opened |
 * ... | name bytes + NUL at that offset
 * ```
 * `encode` places the name right after the fixed part, as the server does.
 */
export const PortInitMessage: MessageCodec<PortInit> = {
  size: 9,
  decode(buf) {
    need(buf, 9, 'PORT_INIT');
    const size = buf.readUInt32LE(0);
    const offset = buf.readUInt32LE(4);
    if (offset + size > buf.length) {
      throw new SpiceError('SPICE_ERR_PROTOCOL', `malformed PORT_INIT: name (${size} bytes at ${offset}) outside the ${buf.length}-byte body`);
    }
    const name = buf.subarray(offset, offset + size);
    const end = name.indexOf(0);
    return { name: name.toString('utf8', 0, end === -1 ? name.length : end), opened: buf.readUInt8(8) !== 0 };
  },
  encode(m) {
    const name = Buffer.from(m.name + '\0', 'utf8');
    const buf = Buffer.allocUnsafe(9 + name.length);
    buf.writeUInt32LE(name.length, 0);
    buf.writeUInt32LE(9, 4);
    buf.writeUInt8(m.opened ? 1 : 0, 8);
    name.copy(buf, 9);
    return buf;
  },
};

/**
 * SPICE_MSG_PORT_EVENT (202) and SPICE_MSGC_PORT_EVENT (201):
 * ```
 * u8 event (SPICE_PORT_EVENT_OPENED 0, CLOSED 1, BREAK 2)
 * ```
 */
export const PortEventMessage: MessageCodec<{ event: number }> = {
  size: 1,
  decode(buf) {
    need(buf, 1, 'PORT_EVENT');
    return { event: buf.readUInt8(0) };
  },
  encode(m) {
    return Buffer.from([m.event]);
  },
};
