import test from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { ChannelState, SpiceChannelProtocol } from '../../../src/spice/channel.js';
import { encodeLinkReply } from '../../../src/spice/link.js';
import type { SpiceError } from '../../../src/spice/errors.js';
import type { Notify } from '../../../src/spice/messages.js';

const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
const der = publicKey.export({ format: 'der', type: 'spki' });

function mini(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(6);
  h.writeUInt16LE(type, 0);
  h.writeUInt32LE(body.length, 2);
  return Buffer.concat([h, body]);
}

/** A protocol object wired to arrays, as a fake server sees it. */
function harness(options: { password?: string; maxMessageSize?: number } = {}) {
  const written: Buffer[][] = [];
  const errors: SpiceError[] = [];
  const notes: Notify[] = [];
  let linked = 0;
  const p = new SpiceChannelProtocol({
    channelType: 11,
    channelId: 0,
    connectionId: 42,
    ...options,
    onWrite: (chunks) => {
      written.push(chunks);
      return true;
    },
    onError: (err) => errors.push(err),
    onLinked: () => linked++,
    onNotify: (n) => notes.push(n),
  });
  return { p, written, errors, notes, linked: () => linked, out: () => Buffer.concat(written.splice(0).flat()) };
}

/** Push `buf` one byte at a time: every state must cope with any split. */
function trickle(p: SpiceChannelProtocol, buf: Buffer): void {
  for (let i = 0; i < buf.length; i++) p.push(buf.subarray(i, i + 1));
}

function link(h: ReturnType<typeof harness>, commonCaps = [0x0b]): void {
  h.p.start(false);
  h.out();
  trickle(h.p, encodeLinkReply({ error: 0, pubKey: der, commonCaps, channelCaps: [] }));
  h.out();
  h.p.push(hex('00000000'));
}

test('link stage: SpiceLinkMess, then mechanism + 128-byte ticket, then linked on result 0', () => {
  const h = harness({ password: 'pw' });
  h.p.start(false);
  assert.deepEqual(h.out(), hex('52454451 02000000 02000000 16000000 2a000000 0b 00 01000000 00000000 12000000 09000000'));
  assert.equal(h.p.state, ChannelState.LinkReplyHeader);
  trickle(h.p, encodeLinkReply({ error: 0, pubKey: der, commonCaps: [0x0b], channelCaps: [] }));
  const auth = h.out();
  assert.equal(auth.length, 4 + 128);
  assert.deepEqual(auth.subarray(0, 4), hex('01000000'));
  const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, auth.subarray(4));
  assert.deepEqual(plain, Buffer.from('pw\0'));
  assert.equal(h.p.state, ChannelState.LinkResult);
  h.p.push(hex('0000'));
  assert.equal(h.linked(), 0);
  h.p.push(hex('0000'));
  assert.equal(h.linked(), 1);
  assert.equal(h.p.state, ChannelState.MessageHeader);
  assert.deepEqual(h.errors, []);
});

test('link refused with PERMISSION_DENIED in the result: wrong password', () => {
  const h = harness({ password: 'nope' });
  h.p.start(false);
  h.p.push(encodeLinkReply({ error: 0, pubKey: der, commonCaps: [0x0b], channelCaps: [] }));
  h.p.push(hex('07000000'));
  assert.equal(h.errors[0]?.code, 'SPICE_ERR_WRONG_PASSWORD');
  assert.equal(h.p.state, ChannelState.Closed);
  h.p.push(hex('00000000'));
  assert.equal(h.errors.length, 1, 'input after failure is ignored');
});

test('link refused in the reply: NEED_SECURED → SPICE_ERR_TLS_REQUIRED', () => {
  const h = harness();
  h.p.start(false);
  h.p.push(encodeLinkReply({ error: 5, pubKey: Buffer.alloc(0), commonCaps: [], channelCaps: [] }));
  assert.equal(h.errors[0]?.code, 'SPICE_ERR_TLS_REQUIRED');
  assert.equal(h.errors[0]?.linkError, 5);
});

test('a peer that is not a SPICE server fails with SPICE_ERR_PROTOCOL', () => {
  const h = harness();
  h.p.start(false);
  h.p.push(Buffer.from('HTTP/1.1 400 Bad Request\r\n'));
  assert.equal(h.errors[0]?.code, 'SPICE_ERR_PROTOCOL');
  assert.match(h.errors[0]?.message ?? '', /not a SPICE server/);
});

test('PING → PONG, also for a 250 KiB network-test payload split over many chunks', () => {
  const h = harness();
  link(h);
  const ping = mini(4, Buffer.concat([hex('05000000 0100000000000000'), Buffer.alloc(256000, 7)]));
  for (let i = 0; i < ping.length; i += 1000) h.p.push(ping.subarray(i, i + 1000));
  assert.deepEqual(h.out(), mini(3, hex('05000000 0100000000000000')));
});

test('SET_ACK → ACK_SYNC(generation), then one ACK every `window` messages', () => {
  const h = harness();
  link(h);
  h.p.push(mini(3, hex('09000000 02000000')));
  assert.deepEqual(h.out(), mini(1, hex('09000000')));
  h.p.handle(101, () => {});
  h.p.push(mini(101, hex('aa')));
  assert.deepEqual(h.out(), Buffer.alloc(0));
  h.p.push(mini(101, hex('bb')));
  assert.deepEqual(h.out(), mini(2, Buffer.alloc(0)));
});

test('channel handlers get whole bodies; empty bodies and unknown types are fine; NOTIFY is reported', () => {
  const h = harness();
  link(h);
  const got: string[] = [];
  h.p.handle(101, (b) => got.push(b.toString()));
  const stream = Buffer.concat([mini(101, Buffer.from('hello')), mini(101, Buffer.alloc(0)), mini(150, hex('0102')), mini(101, Buffer.from('!'))]);
  trickle(h.p, stream);
  assert.deepEqual(got, ['hello', '', '!']);
  h.p.push(mini(7, hex('0000000000000000 00000000 00000000 00000000 02000000 6f6b')));
  assert.equal(h.notes[0]?.message, 'ok');
  assert.deepEqual(h.errors, []);
});

test('full data headers with serials when the server lacks MINI_HEADER', () => {
  const h = harness();
  link(h, [0x03]);
  const got: Buffer[] = [];
  h.p.handle(101, (b) => got.push(b));
  h.p.push(hex('0100000000000000 6500 02000000 00000000 abcd'));
  assert.deepEqual(got, [hex('abcd')]);
  h.p.send(101, [hex('01'), hex('02')]);
  h.p.send(101, hex('03'));
  assert.deepEqual(h.out(), hex('0100000000000000 6500 02000000 00000000 0102 0200000000000000 6500 01000000 00000000 03'));
});

test('a message above maxMessageSize fails the channel', () => {
  const h = harness({ maxMessageSize: 1024 });
  link(h);
  h.p.push(hex('6500 01040000'));
  assert.equal(h.errors[0]?.code, 'SPICE_ERR_MESSAGE_TOO_LARGE');
});

test('a handler that throws fails the channel with a SpiceError', () => {
  const h = harness();
  link(h);
  h.p.push(mini(4, hex('01')));
  assert.equal(h.errors[0]?.code, 'SPICE_ERR_PROTOCOL', 'a truncated PING is a protocol error');
});

test('common message types cannot be overridden', () => {
  const h = harness();
  assert.throws(() => h.p.handle(4, () => {}), RangeError);
});
