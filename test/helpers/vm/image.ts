import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { addBusybox, addPrograms, ensureImage, spicedavLayer, systemBase, type GuestImage, type ImageLayer } from '../../../src/vm/image.js';
import { findProgram, MissingPackagesError } from '../../../src/vm/requirements.js';
import { AGENT_PATH, AGENT_SCRIPT, AVAHI_CONFIG, DBUS_CONFIG, INIT_SCRIPT } from './guest-scripts.js';
import { buildRoot as defaultBuildRoot, repoRoot } from '../paths.js';

export type { GuestImage } from '../../../src/vm/image.js';

/** Where test images are cached between runs (gitignored). */
export const defaultCacheDir = join(repoRoot, '.cache', 'vm');

/** Host programs copied with their libraries, and the Debian package to install when one is missing. */
const PROGRAMS: Array<[program: string, debianPackage: string]> = [
  ['node', 'nodejs'], ['curl', 'curl'], ['spice-webdavd', 'spice-webdavd'], ['dbus-daemon', 'dbus'],
  ['avahi-daemon', 'avahi-daemon'],
];

/**
 * Returns the test guest image for the spicedav build in `buildRoot`, building what the cache lacks (see
 * src/vm/image.ts's ensureImage): the test system layer (busybox, virtio modules, node, curl, litmus,
 * spice-webdavd + dbus + avahi, the test /init and the agent; about 170 MB, rebuilt only when a package changes)
 * and the spicedav layer (the build's src, mux and dav trees + the production node_modules; a few MB).
 */
export async function ensureGuestImage(options: { buildRoot?: string; cacheDir?: string } = {}): Promise<GuestImage> {
  return ensureImage([testSystemLayer, spicedavLayer(options.buildRoot ?? defaultBuildRoot, repoRoot)], options.cacheDir ?? defaultCacheDir);
}

const testSystemLayer: ImageLayer = {
  name: 'system',
  build(kernel) {
    const fs = systemBase(kernel);
    addPrograms(fs, PROGRAMS);
    // litmus is a shell script running one binary per suite from libexec, with its test documents in share.
    const litmus = findProgram('litmus');
    if (!litmus) throw new MissingPackagesError(['litmus'], ['litmus']);
    fs.addHostPath(litmus);
    for (const suite of readdirSync('/usr/libexec/litmus')) fs.addElf(`/usr/libexec/litmus/${suite}`);
    fs.addHostTree('/usr/share/litmus');

    fs.addData('/init', INIT_SCRIPT, 0o755);
    fs.addData(AGENT_PATH, AGENT_SCRIPT, 0o755);
    fs.addData('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nmessagebus:x:100:101::/run/dbus:/bin/false\navahi:x:101:102::/run/avahi-daemon:/bin/false\n');
    fs.addData('/etc/group', 'root:x:0:\nmessagebus:x:101:\navahi:x:102:\n');
    fs.addData('/etc/machine-id', 'a5a1ced0a5a1ced0a5a1ced0a5a1ced0\n');
    fs.addData('/etc/dbus-1/spicedav-system.conf', DBUS_CONFIG);
    fs.addData('/etc/avahi/avahi-daemon.conf', AVAHI_CONFIG);
    // busybox last: its applets fill the names the Debian programs above did not take.
    addBusybox(fs);
    return fs;
  },
};
