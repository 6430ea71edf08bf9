import { SpicedavError } from '../errors.js';

/** Stable codes of the errors the host side (`spicedav share`) reports. */
export type HostErrorCode =
  /** The VM's SPICE server has no webdav channel: the VM lacks the virtserialport on a spiceport chardev. */
  | 'HOST_ERR_NO_WEBDAV_PORT'
  /** Another SPICE client (a viewer) holds the VM, or took it over right after we linked. */
  | 'HOST_ERR_VIEWER_CONNECTED'
  /** The QEMU chardev socket cannot be used (not a socket, permission denied). */
  | 'HOST_ERR_SOCKET'
  /** The share or transport was closed. */
  | 'HOST_ERR_CLOSED'
  /** `--domain` needs virsh (libvirt-clients), and it is not installed. */
  | 'HOST_ERR_NO_VIRSH'
  /** libvirt knows no domain by that name on the connection(s) asked. */
  | 'HOST_ERR_DOMAIN_NOT_FOUND'
  /** The domain exists but is not running (the transport waits for it to start). */
  | 'HOST_ERR_DOMAIN_NOT_RUNNING'
  /** The domain has no SPICE display spicedav can reach (none, or only on a unix socket). */
  | 'HOST_ERR_NO_SPICE_DISPLAY'
  /** virsh failed for another reason (libvirtd down, access denied): its message is in ours. */
  | 'HOST_ERR_LIBVIRT';

/** Every error of the host layer. */
export class HostError extends SpicedavError {
  declare readonly code: HostErrorCode;

  constructor(code: HostErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** What to add to a VM so that it has the webdav port, for QEMU and for libvirt (../shared/docs/protocol.md §e). */
export const WEBDAV_PORT_HOWTO =
  'add the webdav port to the VM. QEMU: -device virtio-serial-pci,id=vser0 ' +
  '-chardev spiceport,id=webdav0,name=org.spice-space.webdav.0 ' +
  '-device virtserialport,bus=vser0.0,chardev=webdav0,name=org.spice-space.webdav.0 ; ' +
  "libvirt (virsh edit, inside <devices>): <channel type='spiceport'><source channel='org.spice-space.webdav.0'/>" +
  "<target type='virtio' name='org.spice-space.webdav.0'/></channel>";

/** Why a second SPICE client cannot work, and the way around it. */
export const ONE_CLIENT_HOWTO =
  'SPICE allows one client per VM: a viewer (remote-viewer, virt-manager, virt-viewer) connected to this VM ' +
  'and spicedav take the session from each other. Close the viewer, or share without SPICE: put the webdav ' +
  'virtserialport on a socket chardev (-chardev socket,id=webdav0,path=/run/spicedav-vm.sock,server=on,wait=off) ' +
  'and run spicedav share --qemu-socket /run/spicedav-vm.sock, which works alongside any viewer';
