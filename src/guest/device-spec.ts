import { stat } from 'node:fs/promises';
import { GuestError, GuestErrorCode } from './errors.js';
import type { PortDevice, PortDeviceOptions } from './port-device.js';
import { LINUX_PORT_PATH } from './port-device.js';
import { VirtioPortDevice } from './virtio-port-device.js';
import { UnixSocketPortDevice } from './unix-socket-port-device.js';

/**
 * Turn a `--device` value into a {@link PortDevice}:
 * - `unix:PATH` connects to a unix socket whose listener plays the host (retrying while nobody listens);
 * - `unix-listen:PATH` listens on a unix socket and takes one host connection at a time;
 * - any other value is a path: an existing unix socket is connected to, anything else is opened as the port's
 *   character device (a pty works too: it is switched to raw mode).
 */
export async function portDeviceFromSpec(spec: string, options: PortDeviceOptions = {}): Promise<PortDevice> {
  if (spec.startsWith('unix:')) return new UnixSocketPortDevice({ ...options, path: spec.slice(5) });
  if (spec.startsWith('unix-listen:')) return new UnixSocketPortDevice({ ...options, path: spec.slice(12), listen: true });
  if (spec === '') throw new GuestError(GuestErrorCode.BAD_DEVICE, 'empty --device; give the port path, unix:PATH or unix-listen:PATH');
  // A missing path is not an error: the port may be hot-plugged later, and the device waits for it.
  const st = await stat(spec).catch(() => undefined);
  if (st?.isSocket()) return new UnixSocketPortDevice({ ...options, path: spec });
  if (st && !st.isCharacterDevice()) {
    throw new GuestError(GuestErrorCode.BAD_DEVICE, `${spec} is not a character device or socket; pass the virtio port (${LINUX_PORT_PATH})`);
  }
  return new VirtioPortDevice({ ...options, path: spec });
}
