/** The outcome of one doctor check. `fix` says exactly what to do when the check is not ok. */
export interface CheckResult {
  /** Short name of what was checked, e.g. "webdav port in the VM". */
  name: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  /** What was found, one line. */
  detail: string;
  /** The fix, possibly several lines (commands, XML to paste). */
  fix?: string;
}

const MARK: Record<CheckResult['status'], string> = { ok: '✔', warn: '!', fail: '✖', skip: '-' };

/** Renders results as the text `spicedav doctor` prints: one line each, fixes indented below. Pure. */
export function renderReport(results: CheckResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${MARK[r.status]} ${r.name}: ${r.detail}`);
    if (r.fix && r.status !== 'ok') for (const l of r.fix.split('\n')) lines.push(`    ${l}`);
  }
  const bad = results.filter((r) => r.status === 'fail').length;
  const warn = results.filter((r) => r.status === 'warn').length;
  lines.push(bad || warn ? `${bad} problem${bad === 1 ? '' : 's'}, ${warn} warning${warn === 1 ? '' : 's'}` : 'everything looks right');
  return lines.join('\n') + '\n';
}

/** True when nothing failed (warnings alone do not fail the doctor). */
export function reportOk(results: CheckResult[]): boolean {
  return results.every((r) => r.status !== 'fail');
}
