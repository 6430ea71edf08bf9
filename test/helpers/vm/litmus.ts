import { GUEST_URL } from './peers.js';
import type { Vm } from './vm.js';

/** A litmus run's totals over all its suites, and the lines naming what failed or warned. */
export interface LitmusSummary {
  run: number;
  passed: number;
  failed: number;
  suites: Record<string, { run: number; passed: number }>;
  failures: string[];
  warnings: string[];
  output: string;
}

/**
 * Parses litmus's output: one "<- summary for `SUITE': of N tests run: P passed, F failed." line per suite,
 * "FAIL" lines for failures and "WARNING" lines for warnings.
 */
export function parseLitmus(output: string): LitmusSummary {
  const s: LitmusSummary = { run: 0, passed: 0, failed: 0, suites: {}, failures: [], warnings: [], output };
  for (const line of output.split('\n')) {
    const m = /summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed/.exec(line);
    if (m) {
      const [run, passed, failed] = [Number(m[2]), Number(m[3]), Number(m[4])];
      s.suites[m[1] ?? '?'] = { run, passed };
      s.run += run;
      s.passed += passed;
      s.failed += failed;
    } else if (/\bFAIL\b/.test(line)) s.failures.push(line.trim());
    else if (/WARNING/.test(line)) s.warnings.push(line.trim());
  }
  return s;
}

/** Runs every litmus suite (keep-going) in the guest against the chain's URL; a healthy chain takes 1-2 min. */
export async function runLitmusInGuest(vm: Vm, timeoutMs = 600_000): Promise<LitmusSummary> {
  const r = await vm.exec(`cd /tmp && litmus -k ${GUEST_URL}/ 2>&1`, { timeoutMs });
  return parseLitmus(r.output);
}
