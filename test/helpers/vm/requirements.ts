import type { TestContext } from 'node:test';
import { requireTool } from '../tools.js';

/** Host programs the VM harness needs (QEMU, and what the guest image is built from), with their packages. */
const VM_TOOLS: Array<[tool: string, debianPackage: string]> = [
  ['qemu-system-x86_64', 'qemu-system-x86'], ['busybox', 'busybox-static'], ['curl', 'curl'],
  ['litmus', 'litmus'], ['spice-webdavd', 'spice-webdavd'], ['dbus-daemon', 'dbus'], ['avahi-daemon', 'avahi-daemon'],
];

/** The reference SPICE host: spicy under a virtual X display. */
export const SPICY_TOOLS: Array<[tool: string, debianPackage: string]> = [
  ['spicy', 'spice-client-gtk'], ['xvfb-run', 'xvfb'], ['xauth', 'xauth'],
];

/**
 * Gates a test on the VM harness's programs plus `extra` (requireTool: a skip on a developer machine, a
 * failure under CI). Returns false when the caller should return early.
 */
export function requireVmTools(t: TestContext, extra: Array<[string, string]> = []): boolean {
  for (const [tool, pkg] of [...VM_TOOLS, ...extra]) if (!requireTool(t, tool, pkg)) return false;
  return true;
}
