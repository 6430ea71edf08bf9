import test from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, encodeMessage, messageLength } from '../../../src/guest/dbus.js';

const hex = (s: string): string => s.replace(/\s+/g, '');

test('D-Bus Hello call: the well-known 128-byte message, byte for byte', () => {
  const msg = encodeMessage({ serial: 1, destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', iface: 'org.freedesktop.DBus', member: 'Hello' });
  const s = (t: string): string => Buffer.from(t).toString('hex');
  const expected = hex(
    '6c010001 00000000 01000000 6d000000' + // LE, call, no flags, v1, body 0, serial 1, fields 109 bytes
      '01016f00 15000000' + s('/org/freedesktop/DBus') + '00 0000' + // PATH o, padded to 8
      '02017300 14000000' + s('org.freedesktop.DBus') + '00 000000' + // INTERFACE s
      '03017300 05000000' + s('Hello') + '00 0000' + // MEMBER s
      '06017300 14000000' + s('org.freedesktop.DBus') + '00' + // DESTINATION s
      '000000', // header padded to 8
  );
  assert.equal(msg.toString('hex'), expected);
  assert.equal(msg.length, 128);
});

test('avahi AddService body (iiussssqaay): alignment of q and of the ay elements', () => {
  const msg = encodeMessage({
    serial: 7,
    destination: 'org.freedesktop.Avahi',
    path: '/Client0/EntryGroup1',
    iface: 'org.freedesktop.Avahi.EntryGroup',
    member: 'AddService',
    signature: 'iiussssqaay',
    args: [1, -1, 0, 'Spice client folder', '_webdav._tcp', '', '', 9843, ['u=', 'p=', 'path=/'].map((x) => Buffer.from(x))],
  });
  const bodyLen = msg.readUInt32LE(4);
  const body = msg.subarray(msg.length - bodyLen).toString('hex');
  const s = (t: string): string => Buffer.from(t).toString('hex');
  assert.equal(
    body,
    hex(
      '01000000 ffffffff 00000000' +
        '13000000' + s('Spice client folder') + '00' +
        '0c000000' + s('_webdav._tcp') + '00' +
        '000000 00000000 00' + // "" after padding to 4
        '000000 00000000 00' + // ""
        '00 7326' + // q 9843, 2-aligned
        '1a000000' + // aay: 26 bytes of elements
        '02000000 753d' + '0000 02000000 703d' + '0000 06000000' + s('path=/'),
    ),
  );
  assert.equal(bodyLen, 102);
});

test('D-Bus decode: replies with reply serial, signature and body; split input waits for the whole message', () => {
  const reply = encodeMessage({ type: 2, serial: 9, replySerial: 3, signature: 'osbuq', args: ['/Client0/EntryGroup1', 'avahi 0.8', true, 42, 9843] });
  assert.equal(messageLength(reply.subarray(0, 15)), 0);
  assert.equal(messageLength(reply.subarray(0, reply.length - 1)), 0);
  assert.equal(messageLength(Buffer.concat([reply, reply])), reply.length);
  const m = decodeMessage(reply);
  assert.equal(m.type, 2);
  assert.equal(m.serial, 9);
  assert.equal(m.replySerial, 3);
  assert.equal(m.signature, 'osbuq');
  assert.deepEqual(m.body, ['/Client0/EntryGroup1', 'avahi 0.8', true, 42, 9843]);

  const call = decodeMessage(
    encodeMessage({ serial: 5, path: '/', member: 'AddService', signature: 'iaay', args: [-1, [Buffer.from('u='), Buffer.from('')]] }),
  );
  assert.deepEqual(call.body, [-1, [[0x75, 0x3d], []]]);
});
