import type { SafetyFlag } from '../../medgemma/engine.js';
import { analysisSources, findMention, type MentionHit } from './label-match.js';
import {
  confusion,
  failureReason,
  labelFigures,
  percentiles,
  pooled,
  tally,
  type Confusion,
  type LabelFigures,
  type Percentiles,
} from './metrics.js';

/** What `radiant eval` keeps of one manifest line, and the JSON result it writes (pure). */

export interface StudyOutcome {
  line: number;
  id: string;
  studyInstanceUid: string | null;
  analysisId: number | null;
  status: 'succeeded' | 'failed';
  /** Why it failed, verbatim, and as the reason it is counted under. */
  error?: string;
  reason?: string;
  /** Files of `study` the ingest path refused (the others were analysed). */
  importRefused?: number;
  expected: Record<string, boolean>;
  /** Set when the analysis succeeded. */
  predicted?: Record<string, boolean>;
  /** For each label predicted positive: where the analysis named it. */
  evidence?: Record<string, MentionHit>;
  expectedFindings?: { found: string[]; missed: string[] };
  findings?: number;
  /** The analysis's safety flags (also of a failed analysis, when it kept them). */
  safetyFlags: SafetyFlag[];
  /** totalMs: the analysis's own time (queue wait excluded); modelMs: the engine call; wallMs: request to outcome. */
  timings: { totalMs?: number; modelMs?: number; wallMs: number };
  model?: { name: string; sha256: string | null; backend: string | null } | null;
}

export interface EvalModel {
  name: string | null;
  sha256: string | null;
  quantization: string | null;
  backend: string | null;
  mmprojSha256: string | null;
  /** Null when no identity could be read (a remote endpoint, an unreadable file). */
  validated: boolean | null;
  validation: string | null;
}

export interface EvalResult {
  manifest: string;
  startedAt: string;
  finishedAt: string;
  model: EvalModel;
  /** Distinct models that answered ("name@sha256"): more than one when another worker took some jobs. */
  answeredBy: string[];
  studies: { total: number; analysed: number; failed: number };
  labels: Record<string, LabelFigures>;
  /** Every label decision of the analysed studies pooled into one table. */
  overall: LabelFigures;
  expectedFindings: { expected: number; found: number; recall: number | null };
  safetyFlags: { total: number; analysesWithFlags: number; byRule: Record<string, number> };
  failures: { total: number; byReason: Record<string, number> };
  latency: { totalMs: Percentiles | null; modelMs: Percentiles | null; wallMs: Percentiles | null };
  perStudy: StudyOutcome[];
}

/** The predicted labels and the expected findings found, from what an analysis said. */
export function scoreStudy(
  labels: Record<string, boolean>,
  expectedFindings: readonly string[],
  findings: ReadonlyArray<{ index: number; description: string; category: string | null }>,
  impression: string | null,
): Pick<StudyOutcome, 'predicted' | 'evidence' | 'expectedFindings'> {
  const sources = analysisSources(findings, impression);
  const predicted: Record<string, boolean> = {};
  const evidence: Record<string, MentionHit> = {};
  for (const label of Object.keys(labels)) {
    const hit = findMention(label, sources);
    predicted[label] = hit !== undefined;
    if (hit) evidence[label] = hit;
  }
  const found = expectedFindings.filter((f) => findMention(f, sources) !== undefined);
  return { predicted, evidence, expectedFindings: { found, missed: expectedFindings.filter((f) => !found.includes(f)) } };
}

export function summarize(
  outcomes: readonly StudyOutcome[],
  meta: { manifest: string; startedAt: string; finishedAt: string; model: EvalModel },
): EvalResult {
  const analysed = outcomes.filter((o) => o.status === 'succeeded' && o.predicted);
  const labelNames = [...new Set(outcomes.flatMap((o) => Object.keys(o.expected)))].sort();
  const tables = new Map<string, Confusion>();
  for (const label of labelNames) {
    const pairs = analysed
      .filter((o) => label in o.expected)
      .map((o) => ({ expected: o.expected[label]!, predicted: o.predicted![label] ?? false }));
    tables.set(label, confusion(pairs));
  }
  const expected = analysed.reduce(
    (n, o) => n + (o.expectedFindings ? o.expectedFindings.found.length + o.expectedFindings.missed.length : 0),
    0,
  );
  const found = analysed.reduce((n, o) => n + (o.expectedFindings?.found.length ?? 0), 0);
  const flags = outcomes.flatMap((o) => o.safetyFlags);
  const failed = outcomes.filter((o) => o.status === 'failed');
  const answeredBy = [
    ...new Set(outcomes.flatMap((o) => (o.model ? [`${o.model.name}${o.model.sha256 ? `@${o.model.sha256}` : ''}`] : []))),
  ];
  return {
    ...meta,
    answeredBy,
    studies: { total: outcomes.length, analysed: analysed.length, failed: failed.length },
    labels: Object.fromEntries([...tables].map(([l, c]) => [l, labelFigures(c)])),
    overall: labelFigures(pooled(tables.values())),
    expectedFindings: { expected, found, recall: expected > 0 ? found / expected : null },
    safetyFlags: {
      total: flags.length,
      analysesWithFlags: outcomes.filter((o) => o.safetyFlags.length > 0).length,
      byRule: tally(flags.map((f) => f.rule)),
    },
    failures: { total: failed.length, byReason: tally(failed.map((o) => o.reason ?? failureReason(o.error ?? ''))) },
    latency: {
      totalMs: percentiles(analysed.flatMap((o) => (o.timings.totalMs === undefined ? [] : [o.timings.totalMs]))),
      modelMs: percentiles(analysed.flatMap((o) => (o.timings.modelMs === undefined ? [] : [o.timings.modelMs]))),
      wallMs: percentiles(outcomes.map((o) => o.timings.wallMs)),
    },
    perStudy: [...outcomes],
  };
}

const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)}%`);
const num = (v: number | null) => (v === null ? '—' : v.toFixed(2));
const ms = (p: Percentiles | null) =>
  p ? `p50 ${p.p50.toFixed(0)}  p90 ${p.p90.toFixed(0)}  p95 ${p.p95.toFixed(0)}  max ${p.max.toFixed(0)} ms (n=${p.n})` : '—';

/** The result as a plain-text table for the terminal. */
export function formatTable(r: EvalResult): string {
  const head = ['label', 'n', 'TP', 'FP', 'TN', 'FN', 'sens', 'spec', 'PPV', 'NPV', 'acc', 'kappa'];
  const row = (name: string, f: LabelFigures) => [
    name,
    String(f.n),
    String(f.tp),
    String(f.fp),
    String(f.tn),
    String(f.fn),
    pct(f.sensitivity),
    pct(f.specificity),
    pct(f.ppv),
    pct(f.npv),
    pct(f.accuracy),
    num(f.kappa),
  ];
  const rows = [head, ...Object.entries(r.labels).map(([l, f]) => row(l, f)), row('(all, pooled)', r.overall)];
  const widths = head.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  const line = (x: string[]) => x.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const m = r.model;
  const out = [
    `model: ${m.name ?? 'unknown'}${m.quantization ? ` (${m.quantization})` : ''}, backend ${m.backend ?? 'unknown'}, ` +
      `sha256 ${m.sha256 ?? '—'}, validated ${m.validated === null ? 'unknown' : m.validated ? 'yes' : `NO (${m.validation ?? ''})`}`,
    `studies: ${r.studies.total}, analysed ${r.studies.analysed}, failed ${r.studies.failed}`,
    '',
    line(rows[0]!),
    ...rows.slice(1).map(line),
    '',
    `expected findings found: ${r.expectedFindings.found} of ${r.expectedFindings.expected}` +
      (r.expectedFindings.recall === null ? '' : ` (${pct(r.expectedFindings.recall)})`),
    `safety flags: ${r.safetyFlags.total} in ${r.safetyFlags.analysesWithFlags} analyses` +
      Object.entries(r.safetyFlags.byRule)
        .map(([k, n]) => `\n  ${k}: ${n}`)
        .join(''),
    `failures: ${r.failures.total}` +
      Object.entries(r.failures.byReason)
        .map(([k, n]) => `\n  ${k}: ${n}`)
        .join(''),
    `analysis time: ${ms(r.latency.totalMs)}`,
    `model time:    ${ms(r.latency.modelMs)}`,
  ];
  return out.join('\n');
}
