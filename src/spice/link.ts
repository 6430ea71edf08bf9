/**
 * The SPICE link stage, as pure functions: the REDQ header, SpiceLinkMess, SpiceLinkReply, the auth mechanism
 * choice, the encrypted ticket and the mapping of link error codes to errors that say what to do.
 * Layouts from freedesktop/spice-protocol `spice/protocol.h`; flow in ../shared/docs/protocol.md §c.1.
 * Every channel connection (main, webdav...) runs this stage once, before any message.
 */
import { constants as cryptoConstants, createPublicKey, publicEncrypt } from 'node:crypto';
import {
  SPICE_CHANNEL_MAIN,
  SPICE_COMMON_CAP_AUTH_SASL,
  SPICE_COMMON_CAP_AUTH_SPICE,
  SPICE_COMMON_CAP_MINI_HEADER,
  SPICE_COMMON_CAP_PROTOCOL_AUTH_SELECTION,
  SPICE_LINK_ERR_BAD_CONNECTION_ID,
  SPICE_LINK_ERR_CHANNEL_NOT_AVAILABLE,
  SPICE_LINK_ERR_NEED_SECURED,
  SPICE_LINK_ERR_NEED_UNSECURED,
  SPICE_LINK_ERR_PERMISSION_DENIED,
  SPICE_LINK_ERR_VERSION_MISMATCH,
  SPICE_MAGIC,
  SPICE_MAX_PASSWORD_LENGTH,
  SPICE_TICKET_PUBKEY_BYTES,
  SPICE_VERSION_MAJOR,
  SPICE_VERSION_MINOR,
} from './constants.js';
import { SpiceError } from './errors.js';

/** SpiceLinkHeader: sent first in each direction. */
export interface LinkHeader {
  magic: number;
  majorVersion: number;
  minorVersion: number;
  /** Bytes that follow the header (SpiceLinkMess or SpiceLinkReply plus caps). */
  size: number;
}

/** Bytes of SpiceLinkHeader. */
export const LINK_HEADER_SIZE = 16;
/** Bytes of SpiceLinkMess without the caps words. */
export const LINK_MESS_SIZE = 18;
/** Bytes of SpiceLinkReply without the caps words. */
export const LINK_REPLY_SIZE = 178;
/** Bytes of the RSA-1024 encrypted ticket (SpiceLinkEncryptedTicket). */
export const ENCRYPTED_TICKET_SIZE = 128;
/** The server accepts link messages up to this size (freedesktop/spice reds.cpp); replies are far smaller. */
export const MAX_LINK_SIZE = 4096;

/**
 * SpiceLinkHeader (16 bytes):
 * ```
 * u32 magic ("REDQ") | u32 major_version (2) | u32 minor_version (2) | u32 size
 * ```
 */
export function encodeLinkHeader(size: number): Buffer {
  const buf = Buffer.allocUnsafe(LINK_HEADER_SIZE);
  buf.writeUInt32LE(SPICE_MAGIC, 0);
  buf.writeUInt32LE(SPICE_VERSION_MAJOR, 4);
  buf.writeUInt32LE(SPICE_VERSION_MINOR, 8);
  buf.writeUInt32LE(size, 12);
  return buf;
}

/** Decode a SpiceLinkHeader (layout at {@link encodeLinkHeader}); checks neither magic nor version. */
export function decodeLinkHeader(buf: Buffer): LinkHeader {
  if (buf.length < LINK_HEADER_SIZE) throw new SpiceError('SPICE_ERR_PROTOCOL', 'truncated SPICE link header');
  return { magic: buf.readUInt32LE(0), majorVersion: buf.readUInt32LE(4), minorVersion: buf.readUInt32LE(8), size: buf.readUInt32LE(12) };
}

/** SpiceLinkMess: which channel the client wants and what it can do. */
export interface LinkMess {
  /** 0 for the main channel; the session id from MAIN_INIT for every other channel. */
  connectionId: number;
  channelType: number;
  channelId: number;
  /** Capability words (capability N is bit N % 32 of word N / 32). */
  commonCaps: number[];
  channelCaps: number[];
}

/**
 * The common caps word every spicedav channel sends: PROTOCOL_AUTH_SELECTION | MINI_HEADER = 0x09, like
 * spice-gtk without SASL and spice-html5.
 */
export const CLIENT_COMMON_CAPS = (1 << SPICE_COMMON_CAP_PROTOCOL_AUTH_SELECTION) | (1 << SPICE_COMMON_CAP_MINI_HEADER);

/**
 * SpiceLinkHeader + SpiceLinkMess (18 bytes) + caps, as one buffer:
 * ```
 * u32 connection_id | u8 channel_type | u8 channel_id | u32 num_common_caps | u32 num_channel_caps |
 * u32 caps_offset (18) | u32 common_caps[num_common_caps] | u32 channel_caps[num_channel_caps]
 * ```
 */
export function encodeLinkMess(mess: LinkMess): Buffer {
  const capsWords = mess.commonCaps.length + mess.channelCaps.length;
  const size = LINK_MESS_SIZE + 4 * capsWords;
  const buf = Buffer.allocUnsafe(LINK_HEADER_SIZE + size);
  encodeLinkHeader(size).copy(buf, 0);
  let o = LINK_HEADER_SIZE;
  buf.writeUInt32LE(mess.connectionId, o);
  buf.writeUInt8(mess.channelType, o + 4);
  buf.writeUInt8(mess.channelId, o + 5);
  buf.writeUInt32LE(mess.commonCaps.length, o + 6);
  buf.writeUInt32LE(mess.channelCaps.length, o + 10);
  buf.writeUInt32LE(LINK_MESS_SIZE, o + 14);
  o += LINK_MESS_SIZE;
  for (const w of [...mess.commonCaps, ...mess.channelCaps]) {
    buf.writeUInt32LE(w >>> 0, o);
    o += 4;
  }
  return buf;
}

/** Decode a SpiceLinkMess body (after the header); the inverse of {@link encodeLinkMess}, used by tests and fakes. */
export function decodeLinkMess(body: Buffer): LinkMess {
  if (body.length < LINK_MESS_SIZE) throw new SpiceError('SPICE_ERR_PROTOCOL', 'truncated SpiceLinkMess');
  const numCommon = body.readUInt32LE(6);
  const numChannel = body.readUInt32LE(10);
  const capsOffset = body.readUInt32LE(14);
  const words = readCaps(body, capsOffset, numCommon + numChannel, 'SpiceLinkMess');
  return {
    connectionId: body.readUInt32LE(0),
    channelType: body.readUInt8(4),
    channelId: body.readUInt8(5),
    commonCaps: words.slice(0, numCommon),
    channelCaps: words.slice(numCommon),
  };
}

/** SpiceLinkReply: the server's answer to SpiceLinkMess. */
export interface LinkReply {
  /** A SpiceLinkErr value; 0 = go on with authentication. */
  error: number;
  /** DER SubjectPublicKeyInfo of the server's one-time RSA-1024 key (zeros when SASL was chosen). */
  pubKey: Buffer;
  commonCaps: number[];
  channelCaps: number[];
}

/**
 * SpiceLinkReply (178 bytes) + caps, the body after the server's SpiceLinkHeader:
 * ```
 * u32 error | u8 pub_key[162] | u32 num_common_caps | u32 num_channel_caps | u32 caps_offset (178) |
 * u32 caps[...] at caps_offset
 * ```
 */
export function decodeLinkReply(body: Buffer): LinkReply {
  if (body.length < 4) throw new SpiceError('SPICE_ERR_PROTOCOL', 'truncated SpiceLinkReply');
  const error = body.readUInt32LE(0);
  // On error the server zeroes the rest; be lenient about its length then, the code is what matters.
  if (error !== 0 && body.length < LINK_REPLY_SIZE) return { error, pubKey: Buffer.alloc(0), commonCaps: [], channelCaps: [] };
  if (body.length < LINK_REPLY_SIZE) throw new SpiceError('SPICE_ERR_PROTOCOL', `truncated SpiceLinkReply (${body.length} bytes)`);
  const numCommon = body.readUInt32LE(4 + SPICE_TICKET_PUBKEY_BYTES);
  const numChannel = body.readUInt32LE(8 + SPICE_TICKET_PUBKEY_BYTES);
  const capsOffset = body.readUInt32LE(12 + SPICE_TICKET_PUBKEY_BYTES);
  const words = readCaps(body, capsOffset, numCommon + numChannel, 'SpiceLinkReply');
  return {
    error,
    pubKey: Buffer.from(body.subarray(4, 4 + SPICE_TICKET_PUBKEY_BYTES)),
    commonCaps: words.slice(0, numCommon),
    channelCaps: words.slice(numCommon),
  };
}

/** Encode a SpiceLinkHeader + SpiceLinkReply + caps (what the server sends); for tests and fake servers. */
export function encodeLinkReply(reply: LinkReply): Buffer {
  const words = [...reply.commonCaps, ...reply.channelCaps];
  const size = LINK_REPLY_SIZE + 4 * words.length;
  const buf = Buffer.alloc(LINK_HEADER_SIZE + size);
  encodeLinkHeader(size).copy(buf, 0);
  const o = LINK_HEADER_SIZE;
  buf.writeUInt32LE(reply.error, o);
  reply.pubKey.copy(buf, o + 4, 0, Math.min(reply.pubKey.length, SPICE_TICKET_PUBKEY_BYTES));
  buf.writeUInt32LE(reply.commonCaps.length, o + 4 + SPICE_TICKET_PUBKEY_BYTES);
  buf.writeUInt32LE(reply.channelCaps.length, o + 8 + SPICE_TICKET_PUBKEY_BYTES);
  buf.writeUInt32LE(LINK_REPLY_SIZE, o + 12 + SPICE_TICKET_PUBKEY_BYTES);
  words.forEach((w, i) => buf.writeUInt32LE(w >>> 0, o + LINK_REPLY_SIZE + 4 * i));
  return buf;
}

function readCaps(body: Buffer, offset: number, count: number, what: string): number[] {
  if (count > 2048 || offset + 4 * count > body.length) {
    throw new SpiceError('SPICE_ERR_PROTOCOL', `malformed ${what}: ${count} caps words at offset ${offset} in ${body.length} bytes`);
  }
  const words: number[] = [];
  for (let i = 0; i < count; i++) words.push(body.readUInt32LE(offset + 4 * i));
  return words;
}

/** True when capability `cap` is set in the caps words. */
export function hasCap(words: readonly number[], cap: number): boolean {
  const word = words[cap >>> 5];
  return word !== undefined && ((word >>> (cap & 31)) & 1) === 1;
}

/**
 * The bytes the client sends after a successful SpiceLinkReply: the auth mechanism (u32, only when the server
 * offers PROTOCOL_AUTH_SELECTION, as spice-gtk decides) followed by the 128-byte encrypted ticket:
 * ```
 * [u32 auth_mechanism (SPICE_COMMON_CAP_AUTH_SPICE = 1)] | u8 encrypted_ticket[128]
 * ```
 * The ticket is sent even without a password: with `disable-ticketing=on` the server still decrypts it and
 * denies the link if that fails (freedesktop/spice reds.cpp `reds_handle_ticket`).
 */
export function encodeAuth(reply: LinkReply, password: string | undefined): Buffer[] {
  const selection = hasCap(reply.commonCaps, SPICE_COMMON_CAP_PROTOCOL_AUTH_SELECTION);
  if (selection && !hasCap(reply.commonCaps, SPICE_COMMON_CAP_AUTH_SPICE)) {
    const sasl = hasCap(reply.commonCaps, SPICE_COMMON_CAP_AUTH_SASL);
    throw new SpiceError(
      'SPICE_ERR_SASL_UNSUPPORTED',
      sasl
        ? 'the SPICE server only offers SASL authentication (QEMU -spice sasl=on), which spicedav does not support: use a SPICE password (password-secret=) or --qemu-socket'
        : 'the SPICE server offers no authentication mechanism spicedav knows',
    );
  }
  const ticket = encryptTicket(reply.pubKey, password);
  if (!selection) return [ticket];
  const mech = Buffer.allocUnsafe(4);
  mech.writeUInt32LE(SPICE_COMMON_CAP_AUTH_SPICE, 0);
  return [mech, ticket];
}

/** Throws SPICE_ERR_PASSWORD_TOO_LONG unless the password fits a SPICE ticket. */
export function checkPassword(password: string | undefined): void {
  if (password !== undefined && Buffer.byteLength(password, 'utf8') > SPICE_MAX_PASSWORD_LENGTH) {
    throw new SpiceError(
      'SPICE_ERR_PASSWORD_TOO_LONG',
      `the SPICE password is longer than ${SPICE_MAX_PASSWORD_LENGTH} bytes; SPICE cannot carry it: set a shorter password on the VM`,
    );
  }
}

/**
 * Encrypt the ticket (the password plus its trailing NUL, or just a NUL) with the server's public key using
 * RSA-OAEP with SHA-1, MGF1-SHA1 and an empty label (freedesktop/spice `docs/spice_protocol.txt`).
 */
export function encryptTicket(pubKeyDer: Buffer, password: string | undefined): Buffer {
  checkPassword(password);
  if (pubKeyDer.length === 0 || pubKeyDer.every((b) => b === 0)) {
    throw new SpiceError('SPICE_ERR_SASL_UNSUPPORTED', 'the SPICE server sent no ticket key (it expects SASL, which spicedav does not support)');
  }
  let key;
  try {
    key = createPublicKey({ key: pubKeyDer, format: 'der', type: 'spki' });
  } catch (cause) {
    throw new SpiceError('SPICE_ERR_PROTOCOL', 'the SPICE server sent an unreadable ticket key', { cause });
  }
  return publicEncrypt(
    { key, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
    Buffer.from(`${password ?? ''}\0`, 'utf8'),
  );
}

/** What the error mapping needs to know about the link that failed. */
export interface LinkContext {
  channelType: number;
  channelId: number;
  /** A password was sent (not just the empty ticket). */
  password: boolean;
  /** The connection is TLS. */
  secure: boolean;
}

/** Map a SpiceLinkErr (from a SpiceLinkReply or the link result) to a SpiceError whose message says what to do. */
export function linkError(code: number, ctx: LinkContext): SpiceError {
  const opts = { linkError: code };
  const channel = ctx.channelType === SPICE_CHANNEL_MAIN ? 'main channel' : `channel ${ctx.channelType}:${ctx.channelId}`;
  switch (code) {
    case SPICE_LINK_ERR_PERMISSION_DENIED:
      return ctx.password
        ? new SpiceError('SPICE_ERR_WRONG_PASSWORD', 'the SPICE server rejected the password (wrong or expired): check --password-file / SPICE_PASSWORD against the VM\'s SPICE password', opts)
        : new SpiceError(
            'SPICE_ERR_PERMISSION_DENIED',
            'the SPICE server refused the link: it has ticketing on, so give the VM\'s SPICE password with --password-file or SPICE_PASSWORD; if the VM has no password, start it with -spice ...,disable-ticketing=on',
            opts,
          );
    case SPICE_LINK_ERR_NEED_SECURED:
      return new SpiceError('SPICE_ERR_TLS_REQUIRED', `the SPICE server requires TLS for the ${channel}: connect with spice+tls://HOST:TLS_PORT or give --tls-port (and --ca-file)`, opts);
    case SPICE_LINK_ERR_NEED_UNSECURED:
      return new SpiceError('SPICE_ERR_TLS_NOT_ALLOWED', `the SPICE server does not allow TLS for the ${channel}: connect to its plain port with spice://HOST:PORT`, opts);
    case SPICE_LINK_ERR_CHANNEL_NOT_AVAILABLE:
      return new SpiceError('SPICE_ERR_CHANNEL_NOT_AVAILABLE', `the SPICE server has no ${channel}`, opts);
    case SPICE_LINK_ERR_BAD_CONNECTION_ID:
      return new SpiceError('SPICE_ERR_BAD_CONNECTION_ID', `the SPICE session ended before the ${channel} could join it (another client may have connected): reconnect`, opts);
    case SPICE_LINK_ERR_VERSION_MISMATCH:
      return new SpiceError('SPICE_ERR_VERSION_MISMATCH', `the SPICE server speaks another protocol version than ${SPICE_VERSION_MAJOR}.${SPICE_VERSION_MINOR}`, opts);
    default:
      return new SpiceError('SPICE_ERR_LINK_FAILED', `the SPICE server refused the ${channel} with link error ${code}${ctx.secure ? ' (TLS)' : ''}`, opts);
  }
}
