#!/bin/sh
# A QEMU VM whose webdav port is a unix socket: `spicedav share --qemu-socket /run/spicedav/vm.sock DIR`
# serves the folder without any SPICE client, so remote-viewer can stay connected to the VM's SPICE display
# (or the VM can have no SPICE at all). The guest cannot tell the difference.
#
#   examples/host/qemu-socket.sh -m 4096 -drive file=debian.qcow2,if=virtio
#
# SPICEDAV_SOCKET changes the socket path (default /run/spicedav/vm.sock; its directory must exist).
set -eu
exec "${QEMU:-qemu-system-x86_64}" \
  -machine q35 \
  -device virtio-serial-pci,id=vser0 \
  -chardev "socket,id=webdav0,path=${SPICEDAV_SOCKET:-/run/spicedav/vm.sock},server=on,wait=off" \
  -device virtserialport,bus=vser0.0,chardev=webdav0,name=org.spice-space.webdav.0 \
  "$@"
