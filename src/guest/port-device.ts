import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';

/**
 * The guest end of the SPICE webdav port: the virtio-serial port, or a unix socket / pty standing in for it.
 *
 * `open()` resolves once a host (SPICE client, or whatever sits behind the stand-in) is attached, with a Duplex
 * that carries mux bytes. The Duplex ends when the host leaves; the caller then calls `open()` again to wait for
 * the next host. A device never busy-loops while it waits.
 */
export interface PortDevice {
  /** Wait for a host; rejects with an AbortError when `signal` aborts, or a {@link GuestError} on fatal errors. */
  open(signal: AbortSignal): Promise<Duplex>;
  /** Release what the device holds between sessions (a listening socket); optional. */
  close?(): Promise<void>;
}

/** Where Linux guests see the port (udev symlink to /dev/vportNpM), as spice-webdavd uses it. */
export const LINUX_PORT_PATH = '/dev/virtio-ports/org.spice-space.webdav.0';
/** Where Windows guests see the port through the vioserial driver. Untested with spicedav (see docs/guest.md). */
export const WINDOWS_PORT_PATH = '\\\\.\\Global\\org.spice-space.webdav.0';
/** The port device this platform's guests have. */
export const DEFAULT_PORT_PATH = process.platform === 'win32' ? WINDOWS_PORT_PATH : LINUX_PORT_PATH;

/** Timing options shared by the device implementations. */
export interface PortDeviceOptions {
  /** Longest pause between two checks for a host while none is attached, ms (default 1000, as spice-webdavd). */
  pollInterval?: number;
  /** First pause after a check found no host; doubles up to `pollInterval`, so a returning host is seen fast (100). */
  minPollInterval?: number;
  log?: Logger;
}
