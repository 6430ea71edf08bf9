import { MODULE_LIST_PATH } from '../../../src/vm/image.js';

/**
 * The name of the extra virtio port the test agent listens on (QEMU side: a unix socket chardev). Kept apart
 * from the webdav port so that the harness never touches the chain under test.
 */
export const AGENT_PORT_NAME = 'org.spicedav.test.ctl';

/** The guest path of the agent (see AGENT_SCRIPT). */
export const AGENT_PATH = '/usr/local/bin/spicedav-agent';


// Prefix of /init's own lines on the serial console, so they stand out in the log tail failure messages quote.
const SERIAL_MARKER = '@@SPICEDAV';

/**
 * PID 1 of the test guest. No udev and no systemd: it mounts the pseudo file systems, loads the virtio
 * modules, names the virtio ports the way udev would (/dev/virtio-ports/<name>), brings up loopback (the
 * guest has no other network), arms a watchdog (`sdwatchdog=<seconds>` on the kernel command line) that
 * powers off a guest whose host side vanished, then runs the agent until it exits.
 */
export const INIT_SCRIPT = `#!/bin/sh
export PATH=/usr/local/bin:/usr/bin:/usr/sbin HOME=/root
say() { echo "${SERIAL_MARKER} $*"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run/dbus /run/avahi-daemon /tmp
mount -t devpts devpts /dev/pts
say BOOT "$(cut -d' ' -f1 /proc/uptime)"
watchdog=600
for arg in $(cat /proc/cmdline); do
  case "$arg" in sdwatchdog=*) watchdog="\${arg#sdwatchdog=}" ;; esac
done
( sleep "$watchdog"; say WATCHDOG "no result after $watchdog s, powering off"; poweroff -f ) &
for m in $(cat ${MODULE_LIST_PATH}); do insmod "$m" || say ERROR "insmod $m failed"; done
ip link set lo up
# Ports are announced by the host over the control queue after the driver is up: wait for the agent's port,
# which QEMU's command line lists last.
i=0
until grep -qx ${AGENT_PORT_NAME} /sys/class/virtio-ports/*/name 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 300 ] && { say ERROR "no virtio port named ${AGENT_PORT_NAME}"; poweroff -f; }
  usleep 50000
done
mkdir -p /dev/virtio-ports
for p in /sys/class/virtio-ports/*; do ln -sf "/dev/\${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"; done
say READY "$(cut -d' ' -f1 /proc/uptime)"
${AGENT_PATH}
say AGENT-EXIT "$?"
poweroff -f
`;

/**
 * The guest side of the host's `exec`: reads lines "<id> <base64 script>" from the agent port, runs each
 * script in the background (so the host can run a transfer and act while it runs), and answers
 * "@@RESULT <id> <exit status> <byte count>\\n" followed by the script's output. The lock directory keeps
 * concurrent answers whole. Reads return EOF while no host is connected to the port (virtio_console), so
 * the loop waits and reads again; writes block until one is.
 */
export const AGENT_SCRIPT = `#!/bin/sh
port=/dev/virtio-ports/${AGENT_PORT_NAME}
dir=/run/agent
mkdir -p $dir
exec 3<>$port
run() {
  sh $dir/$1.sh >$dir/$1.out 2>&1 </dev/null 3>&-
  rc=$?
  until mkdir $dir/lock 2>/dev/null; do usleep 10000; done
  printf '@@RESULT %s %s %s\\n' "$1" "$rc" "$(wc -c <$dir/$1.out)" >&3
  cat $dir/$1.out >&3
  rmdir $dir/lock
  rm -f $dir/$1.sh $dir/$1.out
}
echo @@HELLO >&3
while :; do
  while read -r id script <&3; do
    echo "$script" | base64 -d >$dir/$id.sh
    run "$id" &
  done
  usleep 100000
done
`;

/**
 * D-Bus system bus configuration for the interop guest: spice-webdavd talks to avahi-daemon over it. Root
 * is the only user in the guest, so everything is allowed.
 */
export const DBUS_CONFIG = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
`;

/** avahi-daemon configuration: loopback only (spice-webdavd advertises there), no wide-area, no reflector. */
export const AVAHI_CONFIG = `[server]
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
[reflector]
[rlimits]
`;

/**
 * Guest shell snippet that starts the reference guest daemon the way its systemd unit does (after dbus and
 * avahi), in the background, logging to /tmp. Idempotent about dbus and avahi (bench:vm starts it once per
 * round): a second dbus-daemon would take the bus socket away from the avahi-daemon already running.
 */
export const START_SPICE_WEBDAVD = `[ -S /run/dbus/system_bus_socket ] || dbus-daemon --config-file=/etc/dbus-1/spicedav-system.conf --fork --nopidfile
i=0; until [ -S /run/dbus/system_bus_socket ]; do i=$((i+1)); [ $i -gt 100 ] && exit 1; usleep 50000; done
pidof avahi-daemon >/dev/null || avahi-daemon --no-drop-root --no-chroot -D >/tmp/avahi.log 2>&1
spice-webdavd -p 9843 >/tmp/spice-webdavd.log 2>&1 &
`;
