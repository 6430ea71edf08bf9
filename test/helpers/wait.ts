/**
 * Poll `condition` every `stepMs` until it holds or `timeoutMs` passed; resolves with its last value, so the
 * caller's assertion says what did not happen in time.
 */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 2000, stepMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
