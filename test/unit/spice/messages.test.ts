import test from 'node:test';
import assert from 'node:assert/strict';
import {
  AckSyncMessage,
  ChannelsListMessage,
  DisconnectingMessage,
  FullDataHeader,
  MainInitMessage,
  MiniDataHeader,
  NotifyMessage,
  PingMessage,
  PongMessage,
  PortEventMessage,
  PortInitMessage,
  SetAckMessage,
} from '../../../src/spice/messages.js';
import { hasCode } from '../../../src/errors.js';

const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

test('mini data header: u16 type | u32 size', () => {
  const bytes = hex('6500 | 0a000100');
  assert.deepEqual(MiniDataHeader.decode(bytes), { type: 101, size: 0x1000a });
  assert.deepEqual(MiniDataHeader.encode({ type: 101, size: 0x1000a }), bytes);
});

test('full data header: u64 serial | u16 type | u32 size | u32 sub_list', () => {
  const bytes = hex('0200000000000000 | 6700 | 20000000 | 00000000');
  assert.deepEqual(FullDataHeader.decode(bytes), { serial: 2n, type: 103, size: 32, subList: 0 });
  assert.deepEqual(FullDataHeader.encode({ serial: 2n, type: 103, size: 32, subList: 0 }), bytes);
});

test('SET_ACK and ACK_SYNC', () => {
  assert.deepEqual(SetAckMessage.decode(hex('07000000 | 14000000')), { generation: 7, window: 20 });
  assert.deepEqual(SetAckMessage.encode({ generation: 7, window: 20 }), hex('07000000 14000000'));
  assert.deepEqual(AckSyncMessage.encode({ generation: 7 }), hex('07000000'));
});

test('PING with a network-test payload, PONG echoes id and timestamp only', () => {
  const ping = Buffer.concat([hex('01000000 | 8877665544332211'), Buffer.alloc(256000)]);
  assert.deepEqual(PingMessage.decode(ping), { id: 1, timestamp: 0x1122334455667788n, payloadLength: 256000 });
  assert.deepEqual(PingMessage.encode({ id: 1, timestamp: 0x1122334455667788n, payloadLength: 256000 }), ping);
  assert.deepEqual(PongMessage.encode({ id: 1, timestamp: 0x1122334455667788n }), hex('01000000 8877665544332211'));
  assert.deepEqual(PongMessage.decode(hex('01000000 8877665544332211')), { id: 1, timestamp: 0x1122334455667788n });
});

test('NOTIFY: u64 time | u32 severity | u32 visibility | u32 what | u32 len | message', () => {
  const bytes = hex('0500000000000000 | 01000000 | 02000000 | 03000000 | 03000000 | 686900');
  assert.deepEqual(NotifyMessage.decode(bytes), { timeStamp: 5n, severity: 1, visibility: 2, what: 3, message: 'hi' });
  assert.deepEqual(NotifyMessage.encode({ timeStamp: 5n, severity: 1, visibility: 2, what: 3, message: 'hi\0' }), bytes);
  assert.ok(hasCode(catchErr(() => NotifyMessage.decode(bytes.subarray(0, 26))), 'SPICE_ERR_PROTOCOL'));
});

test('DISCONNECTING: u64 time | u32 reason', () => {
  const bytes = hex('0900000000000000 | 07000000');
  assert.deepEqual(DisconnectingMessage.decode(bytes), { timeStamp: 9n, reason: 7 });
  assert.deepEqual(DisconnectingMessage.encode({ timeStamp: 9n, reason: 7 }), bytes);
});

test('MAIN_INIT: 8 × u32 starting with the session id', () => {
  const bytes = hex('efbeadde 01000000 03000000 01000000 00000000 0a000000 e8030000 00400000');
  const init = MainInitMessage.decode(bytes);
  assert.equal(init.sessionId, 0xdeadbeef);
  assert.deepEqual(init, {
    sessionId: 0xdeadbeef, displayChannelsHint: 1, supportedMouseModes: 3, currentMouseMode: 1,
    agentConnected: 0, agentTokens: 10, multiMediaTime: 1000, ramHint: 0x4000,
  });
  assert.deepEqual(MainInitMessage.encode(init), bytes);
  assert.ok(hasCode(catchErr(() => MainInitMessage.decode(bytes.subarray(0, 31))), 'SPICE_ERR_PROTOCOL'));
});

test('CHANNELS_LIST: u32 count | {u8 type, u8 id}…, including a one-entry hot-plug list', () => {
  const bytes = hex('03000000 | 0100 | 0b00 | 0a01');
  const list = [{ type: 1, id: 0 }, { type: 11, id: 0 }, { type: 10, id: 1 }];
  assert.deepEqual(ChannelsListMessage.decode(bytes), list);
  assert.deepEqual(ChannelsListMessage.encode(list), bytes);
  assert.deepEqual(ChannelsListMessage.decode(hex('01000000 0b00')), [{ type: 11, id: 0 }]);
  assert.ok(hasCode(catchErr(() => ChannelsListMessage.decode(hex('03000000 0100'))), 'SPICE_ERR_PROTOCOL'));
});

test('PORT_INIT: u32 name_size | u32 name_offset | u8 opened | name + NUL at the offset', () => {
  const name = Buffer.from('org.spice-space.webdav.0\0');
  const bytes = Buffer.concat([hex('19000000 | 09000000 | 00'), name]);
  assert.deepEqual(PortInitMessage.decode(bytes), { name: 'org.spice-space.webdav.0', opened: false });
  assert.deepEqual(PortInitMessage.encode({ name: 'org.spice-space.webdav.0', opened: false }), bytes);
  // The name is found through its offset, not assumed to follow the fixed part.
  const moved = Buffer.concat([hex('03000000 | 0c000000 | 01'), hex('aabbcc'), Buffer.from('ab\0')]);
  assert.deepEqual(PortInitMessage.decode(moved), { name: 'ab', opened: true });
  assert.ok(hasCode(catchErr(() => PortInitMessage.decode(hex('10000000 09000000 00 6162'))), 'SPICE_ERR_PROTOCOL'));
});

test('PORT_EVENT: u8 event', () => {
  assert.deepEqual(PortEventMessage.decode(hex('02')), { event: 2 });
  assert.deepEqual(PortEventMessage.encode({ event: 0 }), hex('00'));
  assert.ok(hasCode(catchErr(() => PortEventMessage.decode(Buffer.alloc(0))), 'SPICE_ERR_PROTOCOL'));
});

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}
