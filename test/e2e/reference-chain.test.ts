// The reference chain in a real VM: curl in a QEMU guest → spice-webdavd → virtio port → QEMU's SPICE server
// → spicy (spice-gtk + phodav) sharing a host folder. Nothing of spicedav runs here: this proves the harness
// (image, boot, agent, peers, checks) and gives the figures spicedav's own chain is compared with.
import { test } from 'node:test';
import { ensureGuestImage } from '../helpers/vm/image.js';
import { Vm } from '../helpers/vm/vm.js';
import { startSpicy, startSpiceWebdavd } from '../helpers/vm/peers.js';
import { runDavChecks, waitForChain } from '../helpers/vm/dav-checks.js';
import { requireVmTools, SPICY_TOOLS } from '../helpers/vm/requirements.js';
import { tempDir } from '../helpers/tmp.js';

/** Random file size each way: enough to cross many mux frames and SPICE messages, cheap under TCG. */
const BIG_FILE_BYTES = 32 << 20;

test('reference chain: curl → spice-webdavd (guest) ↔ SPICE ↔ spicy/phodav (host)', { timeout: 600_000 }, async (t) => {
  if (!requireVmTools(t, SPICY_TOOLS)) return;
  const image = await ensureGuestImage();
  t.diagnostic(`image ${(image.size / 1e6).toFixed(0)} MB${image.built ? ' (built)' : ' (cached)'}${image.kernel.note ? `; ${image.kernel.note}` : ''}`);
  const vm = await Vm.boot({ image, webdav: 'spice' });
  t.after(() => vm.close());
  t.diagnostic(`boot to agent: ${vm.bootMs} ms`);
  const dir = await tempDir(t, 'spicedav-ref-');

  await startSpiceWebdavd(vm);
  const spicy = startSpicy(vm.spicePort as number, dir);
  t.after(() => spicy.stop());
  await waitForChain(vm).catch(async (err: Error) => {
    const logs = await vm.exec('tail -c 2000 /tmp/spice-webdavd.log /tmp/avahi.log 2>&1');
    throw new Error(`${err.message}\n--- guest ---\n${logs.output}\n--- spicy ---\n${spicy.output()}`);
  });

  await runDavChecks(t, vm, dir, { bigFileBytes: BIG_FILE_BYTES, expect100: 'known-broken' });
});
