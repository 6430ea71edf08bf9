#!/bin/sh
# GNOME/gvfs: mount the SPICE shared folder for the current user, without root and without davfs2.
# GNOME Files also lists it under "Other Locations" as "Spice client folder" when avahi is running.
# Usage: mount-gio.sh [mount|unmount]   (PORT defaults to 9843)
set -eu
url="dav://localhost:${PORT:-9843}/"
case "${1:-mount}" in
  mount) gio mount "$url" && echo "mounted: $(gio info -f "$url" | sed -n 's/^local path: //p')" ;;
  unmount) gio mount -u "$url" ;;
  *) echo "usage: $0 [mount|unmount]" >&2; exit 2 ;;
esac
