import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { GuestError, GuestErrorCode } from './errors.js';

// A minimal D-Bus client: just enough to call methods on the system bus and read simple replies, so that the
// avahi advertisement needs no native module and no helper process (spice-webdavd links libavahi-client; the
// `avahi-publish-service` tool cannot restrict a record to the loopback interface). Spec: "D-Bus Specification",
// sections "Message Format", "Marshaling" and "Authentication Protocol".

// ┌──────────────────────── message header (little-endian, as we send it) ───────────────────────┐
// │ 0  byte  'l' (LE)        1 byte type (1 call, 2 return, 3 error, 4 signal)   2 byte flags     │
// │ 3  byte  version 1       4 uint32 body length      8 uint32 serial (non-zero)                 │
// │ 12 ARRAY of STRUCT(BYTE field code, VARIANT value)  (uint32 length, each struct 8-aligned)    │
// │    codes: 1 PATH o, 2 INTERFACE s, 3 MEMBER s, 4 ERROR_NAME s, 5 REPLY_SERIAL u,               │
// │           6 DESTINATION s, 7 SENDER s, 8 SIGNATURE g                                          │
// │ pad to 8, then the body, marshalled by the SIGNATURE, alignment counted from the body start   │
// └────────────────────────────────────────────────────────────────────────────────────────────────┘

/** A D-Bus value to send: typed by the signature character it is written with. */
export type DbusValue = number | string | boolean | Buffer | DbusValue[];

/** The parts of a received message we use. */
export interface DbusMessage {
  type: number;
  serial: number;
  replySerial?: number;
  errorName?: string;
  path?: string;
  member?: string;
  signature: string;
  body: DbusValue[];
}

const TYPE_CALL = 1;
const TYPE_RETURN = 2;
const TYPE_ERROR = 3;

/** Marshals values into D-Bus wire format (little-endian) with the alignment rules of the spec. */
class Writer {
  #bufs: Buffer[] = [];
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #push(b: Buffer): void {
    this.#bufs.push(b);
    this.#len += b.length;
  }

  align(n: number): void {
    const pad = (n - (this.#len % n)) % n;
    if (pad) this.#push(Buffer.alloc(pad));
  }

  byte(v: number): void {
    this.#push(Buffer.from([v]));
  }

  u32(v: number): void {
    this.align(4);
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.#push(b);
  }

  /** Writes `value` as the single complete type starting at `sig[i]`; returns the index after that type. */
  value(sig: string, i: number, value: DbusValue): number {
    const c = sig[i];
    switch (c) {
      case 'y':
        this.byte(value as number);
        return i + 1;
      case 'b':
        this.u32(value ? 1 : 0);
        return i + 1;
      case 'u':
        this.u32(value as number);
        return i + 1;
      case 'i': {
        this.align(4);
        const b = Buffer.alloc(4);
        b.writeInt32LE(value as number);
        this.#push(b);
        return i + 1;
      }
      case 'q': {
        this.align(2);
        const b = Buffer.alloc(2);
        b.writeUInt16LE(value as number);
        this.#push(b);
        return i + 1;
      }
      case 's':
      case 'o': {
        const s = Buffer.from(value as string, 'utf8');
        this.u32(s.length);
        this.#push(Buffer.concat([s, Buffer.alloc(1)]));
        return i + 1;
      }
      case 'g': {
        const s = Buffer.from(value as string, 'ascii');
        this.byte(s.length);
        this.#push(Buffer.concat([s, Buffer.alloc(1)]));
        return i + 1;
      }
      case 'a': {
        const end = skipType(sig, i + 1);
        const elem = sig.slice(i + 1, end);
        this.u32(0);
        const lenAt = this.#bufs.length - 1;
        // Padding before the first element is not counted in the array length.
        this.align(alignOf(elem[0] as string));
        const start = this.#len;
        const items = Buffer.isBuffer(value) ? [...value] : (value as DbusValue[]);
        for (const item of items) this.value(elem, 0, item);
        (this.#bufs[lenAt] as Buffer).writeUInt32LE(this.#len - start);
        return end;
      }
      case '(': {
        this.align(8);
        let j = i + 1;
        for (const field of value as DbusValue[]) j = this.value(sig, j, field);
        return j + 1;
      }
      case 'v': {
        const [vsig, v] = value as [string, DbusValue];
        this.value('g', 0, vsig);
        this.value(vsig, 0, v);
        return i + 1;
      }
      default:
        throw new TypeError(`D-Bus type ${String(c)} is not supported here`);
    }
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.#bufs, this.#len);
  }
}

function alignOf(c: string): number {
  return c === 'y' || c === 'g' || c === 'v' ? 1 : c === 'q' ? 2 : c === 'x' || c === 't' || c === 'd' || c === '(' || c === '{' ? 8 : 4;
}

/** Index just past the single complete type that starts at `sig[i]`. */
function skipType(sig: string, i: number): number {
  const c = sig[i];
  if (c === 'a') return skipType(sig, i + 1);
  if (c === '(' || c === '{') {
    let j = i + 1;
    while (sig[j] !== ')' && sig[j] !== '}') j = skipType(sig, j);
    return j + 1;
  }
  return i + 1;
}

/** A message to encode: a method call (type 1), or a reply (type 2, with `replySerial`) as a test bus sends. */
export interface DbusOutgoing {
  type?: number;
  serial: number;
  replySerial?: number;
  destination?: string;
  path?: string;
  iface?: string;
  member?: string;
  signature?: string;
  args?: DbusValue[];
}

/** Encodes one message (little-endian). Pure; the method-call vectors are checked in the unit tests. */
export function encodeMessage(msg: DbusOutgoing): Buffer {
  const body = new Writer();
  const signature = msg.signature ?? '';
  let j = 0;
  for (const arg of msg.args ?? []) j = body.value(signature, j, arg);
  const fields: DbusValue[] = [];
  if (msg.path !== undefined) fields.push([1, ['o', msg.path]]);
  if (msg.iface !== undefined) fields.push([2, ['s', msg.iface]]);
  if (msg.member !== undefined) fields.push([3, ['s', msg.member]]);
  if (msg.replySerial !== undefined) fields.push([5, ['u', msg.replySerial]]);
  if (msg.destination !== undefined) fields.push([6, ['s', msg.destination]]);
  if (signature) fields.push([8, ['g', signature]]);
  const head = new Writer();
  for (const b of [0x6c, msg.type ?? TYPE_CALL, 0, 1]) head.byte(b);
  head.u32(body.length);
  head.u32(msg.serial);
  head.value('a(yv)', 0, fields);
  head.align(8);
  return Buffer.concat([head.toBuffer(), body.toBuffer()]);
}

/** Reads values of the simple types replies carry (s o g u i b y, arrays and structs of them). */
class Reader {
  readonly #buf: Buffer;
  readonly #base: number;
  readonly #le: boolean;
  pos: number;

  constructor(buf: Buffer, pos: number, base: number, le: boolean) {
    this.#buf = buf;
    this.pos = pos;
    this.#base = base;
    this.#le = le;
  }

  align(n: number): void {
    const rel = this.pos - this.#base;
    this.pos += (n - (rel % n)) % n;
  }

  u32(): number {
    this.align(4);
    const v = this.#le ? this.#buf.readUInt32LE(this.pos) : this.#buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  value(sig: string, i: number): [DbusValue, number] {
    const c = sig[i];
    switch (c) {
      case 'y':
        return [this.#buf[this.pos++] as number, i + 1];
      case 'b':
        return [this.u32() !== 0, i + 1];
      case 'u':
        return [this.u32(), i + 1];
      case 'i': {
        const v = this.u32();
        return [v | 0, i + 1];
      }
      case 'q': {
        this.align(2);
        const v = this.#le ? this.#buf.readUInt16LE(this.pos) : this.#buf.readUInt16BE(this.pos);
        this.pos += 2;
        return [v, i + 1];
      }
      case 's':
      case 'o': {
        const n = this.u32();
        const s = this.#buf.toString('utf8', this.pos, this.pos + n);
        this.pos += n + 1;
        return [s, i + 1];
      }
      case 'g': {
        const n = this.#buf[this.pos++] as number;
        const s = this.#buf.toString('ascii', this.pos, this.pos + n);
        this.pos += n + 1;
        return [s, i + 1];
      }
      case 'v': {
        const [vsig] = this.value('g', 0);
        const [v] = this.value(vsig as string, 0);
        return [[vsig as string, v], i + 1];
      }
      case 'a': {
        const end = skipType(sig, i + 1);
        const elem = sig.slice(i + 1, end);
        const n = this.u32();
        this.align(alignOf(elem[0] as string));
        const stop = this.pos + n;
        const out: DbusValue[] = [];
        while (this.pos < stop) out.push(this.value(elem, 0)[0]);
        return [out, end];
      }
      case '(': {
        this.align(8);
        const out: DbusValue[] = [];
        let j = i + 1;
        while (sig[j] !== ')') {
          const [v, next] = this.value(sig, j);
          out.push(v);
          j = next;
        }
        return [out, j + 1];
      }
      default:
        throw new TypeError(`D-Bus type ${String(c)} is not supported here`);
    }
  }
}

/** Size of the first complete message in `buf`, or 0 when more bytes are needed. */
export function messageLength(buf: Buffer): number {
  if (buf.length < 16) return 0;
  const le = buf[0] === 0x6c;
  const bodyLen = le ? buf.readUInt32LE(4) : buf.readUInt32BE(4);
  const fieldsLen = le ? buf.readUInt32LE(12) : buf.readUInt32BE(12);
  const headerEnd = 16 + fieldsLen;
  const total = headerEnd + ((8 - (headerEnd % 8)) % 8) + bodyLen;
  return buf.length >= total ? total : 0;
}

/** Decodes one complete message (see {@link messageLength}). Pure. */
export function decodeMessage(buf: Buffer): DbusMessage {
  const le = buf[0] === 0x6c;
  const r = new Reader(buf, 12, 0, le);
  const [fields] = r.value('a(yv)', 0);
  r.align(8);
  const msg: DbusMessage = { type: buf[1] as number, serial: le ? buf.readUInt32LE(8) : buf.readUInt32BE(8), signature: '', body: [] };
  for (const f of fields as DbusValue[][]) {
    const [code, [, v]] = f as [number, [string, DbusValue]];
    if (code === 1) msg.path = v as string;
    else if (code === 3) msg.member = v as string;
    else if (code === 4) msg.errorName = v as string;
    else if (code === 5) msg.replySerial = v as number;
    else if (code === 8) msg.signature = v as string;
  }
  const body = new Reader(buf, r.pos, r.pos, le);
  for (let j = 0; j < msg.signature.length; ) {
    const [v, next] = body.value(msg.signature, j);
    msg.body.push(v);
    j = next;
  }
  return msg;
}

/** The system bus socket: `DBUS_SYSTEM_BUS_ADDRESS` (unix:path=...) or the standard path. */
export function systemBusPath(): string {
  const addr = process.env.DBUS_SYSTEM_BUS_ADDRESS;
  const m = addr ? /unix:(?:.*,)?path=([^,;]+)/.exec(addr) : null;
  return m?.[1] ?? '/var/run/dbus/system_bus_socket';
}

/**
 * One authenticated connection to a D-Bus bus (EXTERNAL auth with our uid), with method calls as promises.
 * Signals are ignored. Objects a peer creates for us (avahi entry groups) live as long as this connection.
 */
export class DbusConnection {
  readonly #socket: Socket;
  #serial = 0;
  #buf: Buffer = Buffer.alloc(0);
  readonly #pending = new Map<number, { resolve: (m: DbusMessage) => void; reject: (e: Error) => void }>();
  #closedErr: Error | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** Connects, authenticates and says Hello; rejects within `timeoutMs` if the bus does not answer. */
  static async connect(path = systemBusPath(), timeoutMs = 2000): Promise<DbusConnection> {
    const socket = connect(path);
    const timer = setTimeout(() => socket.destroy(new Error(`D-Bus at ${path} did not answer in ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.once('connect', resolve);
      });
      const uid = String(process.getuid?.() ?? 0);
      socket.write(`\0AUTH EXTERNAL ${Buffer.from(uid).toString('hex')}\r\n`);
      const line = await new Promise<string>((resolve, reject) => {
        let got = '';
        const onData = (d: Buffer): void => {
          got += d.toString('latin1');
          if (!got.includes('\r\n')) return;
          socket.removeListener('data', onData);
          resolve(got);
        };
        socket.on('data', onData);
        socket.once('close', () => reject(new Error('D-Bus closed during authentication')));
      });
      if (!line.startsWith('OK ')) throw new Error(`D-Bus refused authentication: ${line.trim()}`);
      socket.write('BEGIN\r\n');
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      const conn = new DbusConnection(socket);
      conn.#attach();
      await conn.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'Hello');
      return conn;
    } catch (err) {
      socket.destroy();
      throw new GuestError(GuestErrorCode.DEVICE_OPEN, `D-Bus: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  #attach(): void {
    this.#socket.on('data', (d: Buffer) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
      for (let n = messageLength(this.#buf); n > 0; n = messageLength(this.#buf)) {
        const msg = decodeMessage(this.#buf.subarray(0, n));
        this.#buf = this.#buf.subarray(n);
        const waiter = msg.replySerial === undefined ? undefined : this.#pending.get(msg.replySerial);
        if (!waiter || (msg.type !== TYPE_RETURN && msg.type !== TYPE_ERROR)) continue;
        this.#pending.delete(msg.replySerial as number);
        if (msg.type === TYPE_RETURN) waiter.resolve(msg);
        else waiter.reject(new Error(`${msg.errorName ?? 'D-Bus error'}: ${String(msg.body[0] ?? '')}`));
      }
    });
    const fail = (err?: Error): void => {
      this.#closedErr ??= err ?? new Error('D-Bus connection closed');
      for (const w of this.#pending.values()) w.reject(this.#closedErr);
      this.#pending.clear();
    };
    this.#socket.on('error', fail);
    this.#socket.on('close', () => fail());
  }

  /** True once the connection is gone (a new one is needed). */
  get closed(): boolean {
    return this.#closedErr !== undefined;
  }

  /** Calls a method; resolves with the reply's body values, rejects with the D-Bus error name and message. */
  call(destination: string, path: string, iface: string, member: string, signature?: string, args?: DbusValue[]): Promise<DbusValue[]> {
    if (this.#closedErr) return Promise.reject(this.#closedErr);
    const serial = ++this.#serial;
    const bytes = encodeMessage({ serial, destination, path, iface, member, signature, args });
    return new Promise<DbusMessage>((resolve, reject) => {
      this.#pending.set(serial, { resolve, reject });
      this.#socket.write(bytes);
    }).then((m) => m.body);
  }

  /** Closes the connection (the bus frees what it held for us). */
  close(): void {
    this.#socket.end();
  }
}
