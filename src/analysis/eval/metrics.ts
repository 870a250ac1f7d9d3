/**
 * The figures of `radiant eval` (pure): per-label confusion counts and the measures drawn from
 * them, Cohen's kappa, latency percentiles, failure reasons. A ratio whose denominator is 0 is
 * null (undefined), never 0 or 1: "no positives in the set" is not "sensitivity 0".
 */

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface LabelFigures extends Confusion {
  /** Studies with this label in the manifest whose analysis succeeded. */
  n: number;
  positives: number;
  negatives: number;
  /** TP / (TP + FN). */
  sensitivity: number | null;
  /** TN / (TN + FP). */
  specificity: number | null;
  /** TP / (TP + FP). */
  ppv: number | null;
  /** TN / (TN + FN). */
  npv: number | null;
  /** (TP + TN) / n. */
  accuracy: number | null;
  kappa: number | null;
}

const ratio = (num: number, den: number): number | null => (den > 0 ? num / den : null);

/** Counts one pair of (reference, predicted) decisions per study. */
export function confusion(pairs: Iterable<{ expected: boolean; predicted: boolean }>): Confusion {
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (const { expected, predicted } of pairs) {
    if (expected && predicted) c.tp++;
    else if (expected) c.fn++;
    else if (predicted) c.fp++;
    else c.tn++;
  }
  return c;
}

/**
 * Cohen's kappa of a 2×2 table: (po − pe) / (1 − pe), po the observed agreement, pe the agreement
 * expected by chance from the marginals. Null when pe is 1 (both raters said the same one thing
 * for every study: kappa is undefined) or the table is empty.
 */
export function cohensKappa(c: Confusion): number | null {
  const n = c.tp + c.fp + c.tn + c.fn;
  if (n === 0) return null;
  const po = (c.tp + c.tn) / n;
  const pe = ((c.tp + c.fp) * (c.tp + c.fn) + (c.fn + c.tn) * (c.fp + c.tn)) / (n * n);
  if (pe >= 1) return null;
  return (po - pe) / (1 - pe);
}

export function labelFigures(c: Confusion): LabelFigures {
  const n = c.tp + c.fp + c.tn + c.fn;
  return {
    n,
    positives: c.tp + c.fn,
    negatives: c.tn + c.fp,
    ...c,
    sensitivity: ratio(c.tp, c.tp + c.fn),
    specificity: ratio(c.tn, c.tn + c.fp),
    ppv: ratio(c.tp, c.tp + c.fp),
    npv: ratio(c.tn, c.tn + c.fn),
    accuracy: ratio(c.tp + c.tn, n),
    kappa: cohensKappa(c),
  };
}

/** The sum of tables: pooled (micro) agreement over every label decision. */
export function pooled(tables: Iterable<Confusion>): Confusion {
  const s: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (const c of tables) {
    s.tp += c.tp;
    s.fp += c.fp;
    s.tn += c.tn;
    s.fn += c.fn;
  }
  return s;
}

export interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p95: number;
  max: number;
}

/**
 * Nearest-rank percentiles: the p-th is the smallest value with at least p % of the values at or
 * below it (sorted[ceil(p/100 · n) − 1]); always a value that occurred. Null for no values.
 */
export function percentiles(values: readonly number[]): Percentiles | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const at = (p: number) => v[Math.max(0, Math.ceil((p / 100) * v.length) - 1)]!;
  return { n: v.length, p50: at(50), p90: at(90), p95: at(95), max: v[v.length - 1]! };
}

/**
 * A failure message as a reason to count: the part before its details (the first ": " or " ("),
 * numbers and UIDs folded to "N", so "study 1.2.3 has no stored series" and the same for another
 * study count as one reason.
 */
export function failureReason(message: string): string {
  const cut = message.search(/: | \(/);
  const head = (cut > 0 ? message.slice(0, cut) : message).trim();
  return head.replace(/\d+(?:\.\d+)*/g, 'N').slice(0, 120) || 'unknown';
}

/** Counts of each value, keys sorted by count (then name) for a stable printout. */
export function tally(values: Iterable<string>): Record<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return Object.fromEntries([...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}
