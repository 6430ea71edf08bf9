#!/bin/sh
# A QEMU VM whose guest can mount a host folder shared by `spicedav share --spice spice://127.0.0.1:5930 DIR`.
#
# The four lines that matter for folder sharing are the -spice line and the virtio-serial port named
# org.spice-space.webdav.0 backed by a spiceport chardev of the same name. Add your own disk, memory and
# display options after them (passed through as "$@"), e.g.:
#
#   examples/host/qemu-spice.sh -m 4096 -drive file=debian.qcow2,if=virtio
#
# SPICE_PORT changes the port (default 5930). SPICE allows one client per VM: while `spicedav share` holds
# the connection, a viewer cannot attach; see qemu-socket.sh for a variant that keeps SPICE free for a viewer.
# Over a network, set a password (-object secret,id=spicepw,file=... and password-secret=spicepw instead of
# disable-ticketing=on) or TLS (tls-port=, x509-dir=).
set -eu
exec "${QEMU:-qemu-system-x86_64}" \
  -machine q35 \
  -spice "port=${SPICE_PORT:-5930},addr=127.0.0.1,disable-ticketing=on" \
  -device virtio-serial-pci,id=vser0 \
  -chardev spiceport,id=webdav0,name=org.spice-space.webdav.0 \
  -device virtserialport,bus=vser0.0,chardev=webdav0,name=org.spice-space.webdav.0 \
  "$@"
