import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { constants, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { Duplex } from 'node:stream';
import { encodeLinkReply, decodeLinkMess } from '../../../src/spice/link.js';
import {
  ChannelsListMessage,
  MainInitMessage,
  MiniDataHeader,
  PingMessage,
  PortEventMessage,
  PortInitMessage,
  type ChannelId,
} from '../../../src/spice/messages.js';
import * as C from '../../../src/spice/constants.js';

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
const PUBKEY = publicKey.export({ format: 'der', type: 'spki' });

/** Options of the fake server. */
export interface FakeSpiceOptions {
  password?: string;
  /** What CHANNELS_LIST announces (default main + webdav 0). */
  channels?: ChannelId[];
  /** PORT_INIT's opened flag (default false). */
  opened?: boolean;
}

/**
 * A minimal in-process SPICE server for tests: the link stage with a real RSA ticket, MAIN_INIT, a 250 KiB
 * network-test PING, CHANNELS_LIST, and a webdav port channel whose guest side is `guest`, a Duplex: what the
 * client sends in SPICEVMC_DATA comes out of it, what is written to it goes to the client.
 */
export class FakeSpiceServer {
  readonly server: Server;
  readonly sessionId = 0x1234abcd;
  /** SPICEVMC_DATA bodies received from the client, in order. */
  readonly dataMessages: Buffer[] = [];
  /** PONG ids received on main. */
  readonly pongs: number[] = [];
  opened: boolean;
  #opts: FakeSpiceOptions;
  #main: Socket | null = null;
  #webdav: Socket | null = null;
  #guest: Duplex | null = null;

  constructor(options: FakeSpiceOptions = {}) {
    this.#opts = options;
    this.opened = options.opened ?? false;
    this.server = createServer((s) => this.#accept(s));
  }

  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    this.dropAll();
    this.server.close();
  }

  /** The guest side of the webdav port of the current webdav connection. */
  get guest(): Duplex | null {
    return this.#guest;
  }

  /** The guest opens or closes the port. */
  portEvent(event: number): void {
    this.opened = event === C.SPICE_PORT_EVENT_OPENED;
    if (this.#webdav) this.#send(this.#webdav, C.SPICE_MSG_PORT_EVENT, PortEventMessage.encode({ event }));
  }

  /** Announce hot-plugged channels on main. */
  hotplug(list: ChannelId[]): void {
    if (this.#main) this.#send(this.#main, C.SPICE_MSG_MAIN_CHANNELS_LIST, ChannelsListMessage.encode(list));
  }

  /** Send raw SPICEVMC_DATA to the client's webdav channel. */
  sendData(body: Buffer): boolean {
    return this.#webdav ? this.#send(this.#webdav, C.SPICE_MSG_SPICEVMC_DATA, body) : false;
  }

  /** The webdav channel's socket (for backpressure checks). */
  get webdavSocket(): Socket | null {
    return this.#webdav;
  }

  /** Drop every client connection, as a server going away does. */
  dropAll(): void {
    this.#main?.destroy();
    this.#webdav?.destroy();
  }

  #send(s: Socket, type: number, body: Buffer): boolean {
    s.write(MiniDataHeader.encode({ type, size: body.length }));
    return s.write(body);
  }

  #accept(s: Socket): void {
    let buf = Buffer.alloc(0);
    let stage: 'link' | 'auth' | 'messages' = 'link';
    let channelType = 0;
    s.on('error', () => {});
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (stage === 'link') {
          if (buf.length < 16) return;
          const size = buf.readUInt32LE(12);
          if (buf.length < 16 + size) return;
          const mess = decodeLinkMess(buf.subarray(16, 16 + size));
          buf = buf.subarray(16 + size);
          channelType = mess.channelType;
          s.write(encodeLinkReply({ error: 0, pubKey: PUBKEY, commonCaps: [0x0b], channelCaps: [] }));
          stage = 'auth';
        } else if (stage === 'auth') {
          if (buf.length < 4 + 128) return;
          const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, buf.subarray(4, 132));
          buf = buf.subarray(132);
          const ok = this.#opts.password === undefined || plain.equals(Buffer.from(`${this.#opts.password}\0`));
          const result = Buffer.alloc(4);
          result.writeUInt32LE(ok ? 0 : C.SPICE_LINK_ERR_PERMISSION_DENIED);
          s.write(result);
          if (!ok) return void s.end();
          stage = 'messages';
          this.#linked(s, channelType);
        } else {
          if (buf.length < 6) return;
          const h = MiniDataHeader.decode(buf);
          if (buf.length < 6 + h.size) return;
          const body = buf.subarray(6, 6 + h.size);
          buf = buf.subarray(6 + h.size);
          this.#message(s, channelType, h.type, Buffer.from(body));
        }
      }
    });
  }

  #linked(s: Socket, type: number): void {
    if (type === C.SPICE_CHANNEL_MAIN) {
      this.#main = s;
      this.#send(s, C.SPICE_MSG_MAIN_INIT, MainInitMessage.encode({
        sessionId: this.sessionId, displayChannelsHint: 0, supportedMouseModes: 1, currentMouseMode: 1,
        agentConnected: 0, agentTokens: 0, multiMediaTime: 0, ramHint: 0,
      }));
      this.#send(s, C.SPICE_MSG_PING, PingMessage.encode({ id: 3, timestamp: 99n, payloadLength: 256000 }));
      s.once('close', () => this.#webdav?.destroy());
    } else if (type === C.SPICE_CHANNEL_WEBDAV) {
      this.#webdav = s;
      this.#send(s, C.SPICE_MSG_PORT_INIT, PortInitMessage.encode({ name: C.SPICE_WEBDAV_PORT_NAME, opened: this.opened }));
      const guest = new Duplex({
        read: () => s.resume(),
        write: (chunk: Buffer, _enc, cb) => {
          this.sendData(chunk);
          cb();
        },
      });
      this.#guest = guest;
      s.once('close', () => guest.destroy());
    }
  }

  #message(s: Socket, channelType: number, type: number, body: Buffer): void {
    if (type === C.SPICE_MSGC_PONG) this.pongs.push(body.readUInt32LE(0));
    else if (channelType === C.SPICE_CHANNEL_MAIN && type === C.SPICE_MSGC_MAIN_ATTACH_CHANNELS) {
      const list = this.#opts.channels ?? [{ type: C.SPICE_CHANNEL_WEBDAV, id: 0 }];
      this.#send(s, C.SPICE_MSG_MAIN_CHANNELS_LIST, ChannelsListMessage.encode(list));
    } else if (channelType === C.SPICE_CHANNEL_WEBDAV && type === C.SPICE_MSGC_SPICEVMC_DATA) {
      this.dataMessages.push(body);
      if (this.#guest && !this.#guest.push(body)) s.pause();
    }
  }
}
