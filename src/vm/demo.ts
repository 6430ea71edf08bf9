import { connect, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { addBusybox, addPrograms, ensureImage, MODULE_LIST_PATH, spicedavLayer, systemBase, type GuestImage, type ImageLayer } from './image.js';
import { pickKernelVersion } from './kernel.js';
import type { ProcessGroup } from './process-group.js';
import { chooseAccel, freePort, QEMU, QEMU_PACKAGE, qemuArgs, startQemu, TCG, WEBDAV_PORT_NAME } from './qemu.js';
import { findProgram, MissingPackagesError } from './requirements.js';

/** The shell prompt of the demo guest (PS1 `\u@\h:\w\$ `). */
export const DEMO_HOSTNAME = 'spicedav-demo';

/** Where `spicedav demo --vm` caches its kernel and image: $XDG_CACHE_HOME/spicedav/vm. */
export function demoCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'spicedav', 'vm');
}

/**
 * Checks, before anything is built, that the host has what the demo VM needs: QEMU, a kernel with its modules
 * and a static busybox. Throws one MissingPackagesError naming every missing Debian package.
 */
export function checkDemoRequirements(): void {
  const what: string[] = [];
  const packages: string[] = [];
  if (!findProgram(QEMU)) {
    what.push(QEMU);
    packages.push(QEMU_PACKAGE);
  }
  try {
    pickKernelVersion();
  } catch {
    what.push('a kernel with its modules (/boot/vmlinuz-*)');
    packages.push('linux-image-amd64');
  }
  if (!findProgram('busybox')) {
    what.push('busybox');
    packages.push('busybox-static');
  }
  if (what.length) throw new MissingPackagesError(what, packages);
}

/**
 * PID 1 of the demo guest: mounts, virtio modules, /dev/virtio-ports/<name> links, loopback, then `spicedav
 * guest` in the background (its log in /tmp/spicedav-guest.log), the banner once it listens, and a login shell
 * on the console. When the shell exits, or on `poweroff`/`halt`/`reboot`, the guest powers off and QEMU
 * (-no-reboot) exits.
 */
function initScript(): string {
  return `#!/bin/sh
export PATH=/usr/local/bin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp
mount -t devpts devpts /dev/pts
hostname ${DEMO_HOSTNAME}
port=9843
for arg in $(cat /proc/cmdline); do
  case "$arg" in spicedav_port=*) port="\${arg#spicedav_port=}" ;; esac
done
for m in $(cat ${MODULE_LIST_PATH}); do insmod "$m" || echo "insmod $m failed"; done
ip link set lo up
i=0
until grep -qx ${WEBDAV_PORT_NAME} /sys/class/virtio-ports/*/name 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 300 ] && { echo "no virtio port named ${WEBDAV_PORT_NAME}"; break; }
  usleep 50000
done
mkdir -p /dev/virtio-ports
for p in /sys/class/virtio-ports/*; do ln -sf "/dev/\${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"; done
echo "Starting spicedav guest on 127.0.0.1:$port ..."
node /spicedav/dist/src/cli/index.js guest --port "$port" --no-mdns >/tmp/spicedav-guest.log 2>&1 &
hex=$(printf '%04X' "$port")
i=0
until grep -qE ":$hex [0:]+ 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 600 ] && { echo "spicedav guest did not start:"; cat /tmp/spicedav-guest.log; break; }
  usleep 50000
done
sed "s/9843/$port/g" /etc/motd
cd /root
# busybox's poweroff/halt/reboot signal PID 1 (USR2/USR1/TERM), which the kernel delivers to init only when
# it handles them: wait for the shell in the background so that the trap runs at once.
trap 'poweroff -f' USR1 USR2 TERM
setsid cttyhack sh -l </dev/console >/dev/console 2>&1 &
wait $!
poweroff -f
`;
}

function motd(haveCurl: boolean): string {
  const tries = haveCurl
    ? [
        'curl http://localhost:9843/welcome.txt',
        "curl -s -X PROPFIND -H 'Depth: 1' http://localhost:9843/ | grep -o '<D:href>[^<]*'",
        'echo hello from the guest | curl -T - http://localhost:9843/hello.txt   (then look in the host folder)',
      ]
    : ['wget -qO- http://localhost:9843/welcome.txt'];
  return [
    '',
    'This is a real QEMU guest. `spicedav guest` serves the host folder on http://localhost:9843/ through',
    'the virtio port, QEMU\'s SPICE server and the host\'s spicedav (WebDAV server + mux). Try:',
    ...tries.map((t) => `  ${t}`),
    ...(haveCurl ? ['  wget -qO- http://localhost:9843/welcome.txt'] : []),
    'The guest\'s log: /tmp/spicedav-guest.log.  `poweroff` (or Ctrl-C) ends the demo.',
    '',
  ].join('\n');
}

/** The demo's system layer: busybox, node (this very binary) and curl if the host has it; no test tooling. */
const demoSystemLayer: ImageLayer = {
  name: 'demo',
  build(kernel) {
    const fs = systemBase(kernel);
    fs.addElf(process.execPath);
    if (process.execPath !== '/usr/bin/node') fs.addSymlink('/usr/bin/node', process.execPath);
    const curl = findProgram('curl');
    if (curl) addPrograms(fs, [['curl', 'curl']]);
    fs.addData('/init', initScript(), 0o755);
    fs.addData('/etc/motd', motd(Boolean(curl)));
    fs.addData('/etc/profile', "export PS1='\\u@\\h:\\w\\$ '\n");
    addBusybox(fs);
    return fs;
  },
};

/** The compiled tree this module belongs to (dist/ or .build/<area>/): src/vm/demo.js → two levels up. */
const thisBuildRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The demo guest's image: the demo system layer and the running build of spicedav. */
export function ensureDemoImage(packageRoot: string, cacheDir = demoCacheDir()): Promise<GuestImage> {
  return ensureImage([demoSystemLayer, spicedavLayer(thisBuildRoot, packageRoot)], cacheDir);
}

/** A running demo VM: QEMU with SPICE on loopback and the guest's serial console on a socket. */
export interface DemoVm {
  qemu: ProcessGroup;
  spicePort: number;
  /** The guest's serial console (read: its output; write: keystrokes). */
  console: Socket;
  /** The `-accel` list QEMU was given. */
  accel: string[];
  /** Kills QEMU (if still running) and removes the temp dir. Idempotent. */
  close(): Promise<void>;
}

/**
 * Boots the demo guest: SPICE on 127.0.0.1 (a free port) with the webdav port as a spiceport, the serial
 * console on a unix socket QEMU waits on before starting the guest (so no output is lost), KVM when
 * chooseAccel found it usable, TCG otherwise. Resolves once the console is connected.
 */
export async function bootDemoVm(image: GuestImage, options: { guestPort: number; cacheDir?: string; memoryMiB?: number }): Promise<DemoVm> {
  const dir = await mkdtemp(join(tmpdir(), 'spicedav-demo-'));
  const consolePath = join(dir, 'console.sock');
  const spicePort = await freePort();
  const accel = await chooseAccel(image.kernel, options.cacheDir ?? demoCacheDir()).catch(() => [TCG]);
  const args = qemuArgs({
    kernel: image.kernel, initrd: image.initrd, accel, memoryMiB: options.memoryMiB ?? 1024, spicePort,
    chardevs: [`socket,id=con,path=${consolePath},server=on,wait=on`], serial: 'chardev:con',
    ports: [{ name: WEBDAV_PORT_NAME, chardev: `spiceport,name=${WEBDAV_PORT_NAME}` }],
    append: `spicedav_port=${options.guestPort}`,
  });
  const qemu = startQemu(args);
  let closed = false;
  let console: Socket | undefined;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    console?.destroy();
    await qemu.stop(2000);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (qemu.status) throw new Error(`QEMU exited (${qemu.status.code ?? qemu.status.signal}) at start:\n${qemu.output()}`);
      if (existsSync(consolePath)) {
        try {
          console = await new Promise<Socket>((resolve, reject) => {
            const s = connect(consolePath, () => resolve(s));
            s.once('error', reject);
          });
          break;
        } catch {
          // Not listening yet.
        }
      }
      if (Date.now() > deadline) throw new Error(`QEMU did not open its console socket within 30 s:\n${qemu.output()}`);
      await sleep(50);
    }
    return { qemu, spicePort, console, accel, close };
  } catch (err) {
    await close();
    throw err;
  }
}
