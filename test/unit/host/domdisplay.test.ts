import test from 'node:test';
import assert from 'node:assert/strict';
import { parseDomDisplay, remoteHostOf } from '../../../src/host/domdisplay.js';
import { hasCode } from '../../../src/errors.js';

// Outputs as virsh 9.0 prints them, recorded against libvirt's test driver (test/interop/libvirt-domain.test.ts
// runs the real virsh).

test('parseDomDisplay: plain, TLS-only, both ports, wildcard listen, IPv6', () => {
  assert.deepEqual(parseDomDisplay('spice://127.0.0.1:5900\n\n', 'vm'), { host: '127.0.0.1', port: 5900 });
  assert.deepEqual(parseDomDisplay('spice://127.0.0.1?tls-port=5901\n', 'vm'), { host: '127.0.0.1', tlsPort: 5901 });
  // listen='0.0.0.0' is printed as localhost; we go to 127.0.0.1, which a wildcard listener accepts.
  assert.deepEqual(parseDomDisplay('spice://localhost:5930?tls-port=5931\n', 'vm'), { host: '127.0.0.1', port: 5930, tlsPort: 5931 });
  assert.deepEqual(parseDomDisplay('spice://[::1]:5902\n', 'vm'), { host: '::1', port: 5902 });
});

test('parseDomDisplay: the password virsh appends (last, unescaped) is taken whole', () => {
  assert.deepEqual(parseDomDisplay('spice://192.168.1.5:5900?password=secret\n', 'vm'), { host: '192.168.1.5', port: 5900, password: 'secret' });
  assert.deepEqual(parseDomDisplay('spice://127.0.0.1:5930?tls-port=5931&password=s3cr&t?x=1\n', 'vm'), { host: '127.0.0.1', port: 5930, tlsPort: 5931, password: 's3cr&t?x=1' });
});

test('parseDomDisplay: no SPICE display, or one on a unix socket, is HOST_ERR_NO_SPICE_DISPLAY with the fix', () => {
  for (const out of ['', '\n', 'vnc://localhost:1\n']) {
    assert.throws(
      () => parseDomDisplay(out, 'win11'),
      (e: Error) => hasCode(e, 'HOST_ERR_NO_SPICE_DISPLAY') && /<graphics type='spice'/.test(e.message) && /virsh edit win11/.test(e.message),
    );
  }
  assert.throws(() => parseDomDisplay('spice+unix:///run/libvirt/qemu/spice.sock\n', 'vm'), (e: Error) => hasCode(e, 'HOST_ERR_NO_SPICE_DISPLAY') && /unix socket/.test(e.message));
});

test('parseDomDisplay for a remote libvirt: wildcard means the remote host, its loopback is refused', () => {
  assert.deepEqual(parseDomDisplay('spice://localhost:5900\n', 'vm', 'vmhost'), { host: 'vmhost', port: 5900 });
  assert.deepEqual(parseDomDisplay('spice://192.168.1.9:5900\n', 'vm', 'vmhost'), { host: '192.168.1.9', port: 5900 });
  for (const loop of ['127.0.0.1', '[::1]']) {
    assert.throws(
      () => parseDomDisplay(`spice://${loop}:5900\n`, 'vm', 'vmhost'),
      (e: Error) => hasCode(e, 'HOST_ERR_NO_SPICE_DISPLAY') && /on vmhost has its SPICE server on .*loopback/.test(e.message) && /ssh -L/.test(e.message),
    );
  }
  assert.equal(remoteHostOf('qemu+ssh://root@vmhost:2222/system'), 'vmhost');
  assert.equal(remoteHostOf('qemu+tcp://[fd00::5]/system'), 'fd00::5');
  for (const local of [undefined, 'qemu:///system', 'qemu:///session', 'test:///default', 'qemu+ssh://localhost/system', 'qemu+unix:///system']) {
    assert.equal(remoteHostOf(local), undefined, String(local));
  }
});
