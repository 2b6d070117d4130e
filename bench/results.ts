/** One benchmark figure, with its baseline and target, and the summary table over all of them. */
import { fmtPct, table } from './util.ts';

export interface BenchResult {
  /** Short label in the summary, e.g. `1a`, `4b′`. */
  id: string;
  readonly group: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  /** `value` as printed. */
  readonly display: string;
  /** Measured in the same run. The ratio printed is value ÷ baseline.value. */
  readonly baseline?: { readonly name: string; readonly value: number; readonly display: string };
  readonly target: string;
  /** Undefined for figures given for information only. */
  readonly pass?: boolean;
}

export const ratioOf = (r: BenchResult): number | undefined => (r.baseline && r.baseline.value !== 0 ? r.value / r.baseline.value : undefined);

export function summaryTable(results: readonly BenchResult[]): string {
  const rows = results.map((r) => {
    const ratio = ratioOf(r);
    return [
      r.id,
      `${r.group}: ${r.metric}`,
      r.display,
      r.baseline ? `${r.baseline.display} (${r.baseline.name})` : '—',
      ratio === undefined ? '—' : fmtPct(ratio),
      r.target,
      r.pass === undefined ? 'info' : r.pass ? 'PASS' : 'MISS',
    ];
  });
  return table(['#', 'Measure', 'Lifeboat', 'Baseline (same run)', 'Ratio', 'Target', 'Result'], rows, new Set([2, 4]));
}

export function resultsJson(results: readonly BenchResult[]): Array<Record<string, unknown>> {
  return results.map((r) => ({ ...r, ratio: ratioOf(r) ?? null, result: r.pass === undefined ? 'info' : r.pass ? 'PASS' : 'MISS' }));
}
