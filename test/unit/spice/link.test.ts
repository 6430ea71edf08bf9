import test from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import {
  CLIENT_COMMON_CAPS,
  decodeLinkHeader,
  decodeLinkMess,
  decodeLinkReply,
  encodeAuth,
  encodeLinkHeader,
  encodeLinkMess,
  encodeLinkReply,
  encryptTicket,
  hasCap,
  linkError,
} from '../../../src/spice/link.js';
import { hasCode } from '../../../src/errors.js';

const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

function rsaKey() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  return { der: publicKey.export({ format: 'der', type: 'spki' }), privateKey };
}

test('link header: "REDQ" | major 2 | minor 2 | size', () => {
  const bytes = hex('52454451 | 02000000 | 02000000 | 16000000');
  assert.deepEqual(encodeLinkHeader(22), bytes);
  assert.deepEqual(decodeLinkHeader(bytes), { magic: 0x51444552, majorVersion: 2, minorVersion: 2, size: 22 });
});

test('SpiceLinkMess for main: connection 0, type 1, common caps 0x09 (auth selection + mini header)', () => {
  const bytes = encodeLinkMess({ connectionId: 0, channelType: 1, channelId: 0, commonCaps: [CLIENT_COMMON_CAPS], channelCaps: [] });
  assert.deepEqual(
    bytes,
    hex('52454451 02000000 02000000 16000000 | 00000000 | 01 | 00 | 01000000 | 00000000 | 12000000 | 09000000'),
  );
  assert.deepEqual(decodeLinkMess(bytes.subarray(16)), { connectionId: 0, channelType: 1, channelId: 0, commonCaps: [9], channelCaps: [] });
});

test('SpiceLinkMess for webdav: the session id as connection id, type 11, no channel caps (never LZ4)', () => {
  const bytes = encodeLinkMess({ connectionId: 0x12345678, channelType: 11, channelId: 0, commonCaps: [9], channelCaps: [] });
  assert.deepEqual(bytes.subarray(16), hex('78563412 | 0b | 00 | 01000000 | 00000000 | 12000000 | 09000000'));
});

test('SpiceLinkReply: error | pub_key[162] | caps counts | caps_offset 178 | caps', () => {
  const pubKey = Buffer.alloc(162, 0xab);
  const bytes = encodeLinkReply({ error: 0, pubKey, commonCaps: [0x0b], channelCaps: [0x01] });
  assert.equal(bytes.length, 16 + 178 + 8);
  assert.deepEqual(bytes.subarray(0, 16), hex('52454451 02000000 02000000 ba000000'));
  assert.deepEqual(bytes.subarray(16, 20), hex('00000000'));
  assert.deepEqual(bytes.subarray(16 + 166), hex('01000000 | 01000000 | b2000000 | 0b000000 | 01000000'));
  const reply = decodeLinkReply(bytes.subarray(16));
  assert.deepEqual(reply, { error: 0, pubKey, commonCaps: [0x0b], channelCaps: [0x01] });
  assert.ok(hasCap(reply.commonCaps, 0) && hasCap(reply.commonCaps, 1) && hasCap(reply.commonCaps, 3) && !hasCap(reply.commonCaps, 2));
  assert.ok(!hasCap(reply.commonCaps, 40));
});

test('an error reply decodes to its code even when short', () => {
  assert.equal(decodeLinkReply(hex('07000000')).error, 7);
  assert.ok(hasCode(catchErr(() => decodeLinkReply(Buffer.alloc(100))), 'SPICE_ERR_PROTOCOL'));
});

test('ticket: 128 bytes of RSA-OAEP-SHA1 that decrypt to the password plus NUL', () => {
  const { der, privateKey } = rsaKey();
  const ticket = encryptTicket(der, 's3cret');
  assert.equal(ticket.length, 128);
  const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, ticket);
  assert.deepEqual(plain, Buffer.from('s3cret\0'));
  const empty = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, encryptTicket(der, undefined));
  assert.deepEqual(empty, Buffer.from([0]), 'without a password the ticket is a lone NUL, still sent');
});

test('auth: mechanism 1 (AUTH_SPICE) then the ticket when the server offers auth selection', () => {
  const { der, privateKey } = rsaKey();
  const parts = encodeAuth({ error: 0, pubKey: der, commonCaps: [0x0b], channelCaps: [] }, 'pw');
  assert.equal(parts.length, 2);
  assert.deepEqual(parts[0], hex('01000000'));
  const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, parts[1] as Buffer);
  assert.deepEqual(plain, Buffer.from('pw\0'));
  // An old server without auth selection gets the bare ticket.
  assert.equal(encodeAuth({ error: 0, pubKey: der, commonCaps: [0x08], channelCaps: [] }, undefined).length, 1);
  // SASL only (sasl=on): refused with a clear code.
  assert.ok(hasCode(catchErr(() => encodeAuth({ error: 0, pubKey: Buffer.alloc(162), commonCaps: [0x0d], channelCaps: [] }, undefined)), 'SPICE_ERR_SASL_UNSUPPORTED'));
});

test('password longer than 60 bytes is refused before anything is sent', () => {
  const { der } = rsaKey();
  assert.ok(hasCode(catchErr(() => encryptTicket(der, 'x'.repeat(61))), 'SPICE_ERR_PASSWORD_TOO_LONG'));
  assert.equal(encryptTicket(der, 'x'.repeat(60)).length, 128);
});

test('link errors map to stable codes with messages that say what to do', () => {
  const ctx = { channelType: 1, channelId: 0, password: false, secure: false };
  const cases: Array<[number, boolean, string, RegExp]> = [
    [7, true, 'SPICE_ERR_WRONG_PASSWORD', /password/],
    [7, false, 'SPICE_ERR_PERMISSION_DENIED', /SPICE_PASSWORD.*disable-ticketing=on/],
    [5, false, 'SPICE_ERR_TLS_REQUIRED', /spice\+tls:\/\/|--tls-port/],
    [6, false, 'SPICE_ERR_TLS_NOT_ALLOWED', /plain port/],
    [9, false, 'SPICE_ERR_CHANNEL_NOT_AVAILABLE', /no main channel/],
    [8, false, 'SPICE_ERR_BAD_CONNECTION_ID', /session ended/],
    [4, false, 'SPICE_ERR_VERSION_MISMATCH', /version/],
    [1, false, 'SPICE_ERR_LINK_FAILED', /link error 1/],
  ];
  for (const [code, password, want, message] of cases) {
    const err = linkError(code, { ...ctx, password });
    assert.equal(err.code, want);
    assert.equal(err.linkError, code);
    assert.match(err.message, message);
  }
});

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}
