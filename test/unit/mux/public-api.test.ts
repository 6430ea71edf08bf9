import test from 'node:test';
import assert from 'node:assert/strict';
import * as spicedav from '../../../src/index.js';
import { duplexPair } from '../../helpers/duplex-pair.js';

test("the mux is part of the package's public API (import { MuxSession, ... } from 'spicedav')", async () => {
  for (const name of ['MuxSession', 'MuxChannel', 'MuxError', 'FrameDecoder', 'encodeFrame', 'encodeClose'] as const) {
    assert.equal(typeof spicedav[name], 'function', name);
  }
  assert.equal(spicedav.FRAME_HEADER_SIZE, 10);
  assert.equal(spicedav.MAX_FRAME_PAYLOAD, 65535);
  const [a] = duplexPair();
  const session = new spicedav.MuxSession(a, { role: 'guest' });
  assert.ok(session.open() instanceof spicedav.MuxChannel);
  await session.close(); // graceful: the channel is ended, not errored
});
