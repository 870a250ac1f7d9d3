/**
 * The safety gate against a corpus of radiology sentences with expected verdicts
 * (safety-corpus.jsonl: definitive, certainty, hedged, negated, phi). Prints precision and recall
 * per rule class and holds them to thresholds:
 * - definitive-diagnosis and certainty phrasing (together): recall >= 0.95 and precision >= 0.95.
 *   A missed definitive statement reaches the SR unflagged, so recall matters most; a false flag
 *   costs a radiologist one look, so precision may be a little lower per class;
 * - definitive_diagnosis alone: recall >= 0.95, precision >= 0.9; certainty alone: recall >= 0.9,
 *   precision >= 0.9 (the two classes share borderline phrasing: "is definitely a…");
 * - hedged or negated sentences left unflagged: >= 0.95 (negation handling is the point);
 * - PHI: every echoed identifier found and redacted (recall 1.0): one miss publishes PHI;
 *   precision >= 0.9 (an over-redacted word costs nothing clinically).
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { flagAnswer } from '../../src/medgemma/safety-gate.js';
import type { PhiContext } from '../../src/medgemma/phi-echo.js';

type Expected = 'definitive' | 'certainty' | 'hedged' | 'negated' | 'phi';
interface Row {
  sentence: string;
  expected: Expected;
  phi?: PhiContext;
}

// Compiled to dist/test/unit: the data file stays in the source tree.
const CORPUS = path.resolve('test/unit/safety-corpus.jsonl');
const CLASS_OF: Record<string, 'definitive' | 'certainty' | 'phi'> = {
  definitive_diagnosis: 'definitive',
  certainty: 'certainty',
  phi_echo: 'phi',
};

interface Score {
  tp: number;
  fp: number;
  fn: number;
}
const precision = (s: Score) => (s.tp + s.fp === 0 ? 1 : s.tp / (s.tp + s.fp));
const recall = (s: Score) => (s.tp + s.fn === 0 ? 1 : s.tp / (s.tp + s.fn));

describe('unit: safety gate corpus (precision / recall per rule class)', () => {
  const rows: Row[] = fs
    .readFileSync(CORPUS, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Row);
  const scores: Record<'definitive' | 'certainty' | 'phi' | 'phrasing', Score> = {
    definitive: { tp: 0, fp: 0, fn: 0 },
    certainty: { tp: 0, fp: 0, fn: 0 },
    phi: { tp: 0, fp: 0, fn: 0 },
    phrasing: { tp: 0, fp: 0, fn: 0 },
  };
  let quiet = 0;
  let quietOf = 0;
  const misses: string[] = [];
  const unredacted: string[] = [];

  before(() => {
    for (const r of rows) {
      const out = flagAnswer({ impression: r.sentence }, r.phi ?? {});
      const got = new Set(out.flags.map((f) => CLASS_OF[f.rule]).filter((c) => c !== undefined));
      for (const c of ['definitive', 'certainty', 'phi'] as const) {
        const want = r.expected === c;
        if (want && got.has(c)) scores[c].tp++;
        else if (want) scores[c].fn++;
        else if (got.has(c)) scores[c].fp++;
      }
      const wantPhrasing = r.expected === 'definitive' || r.expected === 'certainty';
      const gotPhrasing = got.has('definitive') || got.has('certainty');
      if (wantPhrasing && gotPhrasing) scores.phrasing.tp++;
      else if (wantPhrasing) scores.phrasing.fn++;
      else if (gotPhrasing) scores.phrasing.fp++;
      if (r.expected === 'hedged' || r.expected === 'negated') {
        quietOf++;
        if (!gotPhrasing) quiet++;
      }
      const agrees = r.expected === 'hedged' || r.expected === 'negated' ? got.size === 0 : got.size === 1 && got.has(r.expected);
      if (!agrees) misses.push(`  expected ${r.expected}, flagged [${[...got].join(', ')}]: ${r.sentence}`);
      const published = (out.answer as { impression: string }).impression;
      if (r.expected === 'phi' && !published.includes('[redacted]')) unredacted.push(r.sentence);
    }
    const line = (name: string, s: Score) =>
      `  ${name.padEnd(22)} precision ${precision(s).toFixed(3)}  recall ${recall(s).toFixed(3)}  (tp ${s.tp}, fp ${s.fp}, fn ${s.fn})`;
    const counts = rows.reduce<Record<string, number>>((m, r) => ({ ...m, [r.expected]: (m[r.expected] ?? 0) + 1 }), {});
    console.log(
      [
        `  corpus: ${rows.length} sentences ${JSON.stringify(counts)}`,
        line('definitive_diagnosis', scores.definitive),
        line('certainty', scores.certainty),
        line('definitive+certainty', scores.phrasing),
        line('phi_echo', scores.phi),
        `  hedged/negated unflagged ${quiet}/${quietOf} (${(quiet / quietOf).toFixed(3)})`,
        ...(misses.length ? ['  disagreements:', ...misses] : []),
      ].join('\n'),
    );
  });

  it('has at least 150 sentences of every kind', () => {
    expect(rows.length).to.be.at.least(150);
    for (const k of ['definitive', 'certainty', 'hedged', 'negated', 'phi'] as const)
      expect(rows.filter((r) => r.expected === k).length, k).to.be.at.least(20);
  });
  it('definitive and certainty phrasing: recall >= 0.95, precision >= 0.95', () => {
    expect(recall(scores.phrasing)).to.be.at.least(0.95);
    expect(precision(scores.phrasing)).to.be.at.least(0.95);
  });
  it('definitive_diagnosis: recall >= 0.95, precision >= 0.9; certainty: recall >= 0.9, precision >= 0.9', () => {
    expect(recall(scores.definitive)).to.be.at.least(0.95);
    expect(precision(scores.definitive)).to.be.at.least(0.9);
    expect(recall(scores.certainty)).to.be.at.least(0.9);
    expect(precision(scores.certainty)).to.be.at.least(0.9);
  });
  it('hedged and negated sentences are left unflagged (>= 0.95)', () => {
    expect(quiet / quietOf).to.be.at.least(0.95);
  });
  it('every echoed identifier is flagged and redacted; precision >= 0.9', () => {
    expect(recall(scores.phi)).to.equal(1);
    expect(unredacted).to.deep.equal([]);
    expect(precision(scores.phi)).to.be.at.least(0.9);
  });
});
