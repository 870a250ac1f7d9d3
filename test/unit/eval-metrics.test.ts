import { expect } from 'chai';
import { cohensKappa, confusion, failureReason, labelFigures, percentiles, pooled, tally } from '../../src/analysis/eval/metrics.js';

describe('unit: eval metrics', () => {
  it('counts a confusion table from (reference, predicted) pairs', () => {
    const pairs = [
      { expected: true, predicted: true },
      { expected: true, predicted: false },
      { expected: false, predicted: true },
      { expected: false, predicted: false },
      { expected: false, predicted: false },
    ];
    expect(confusion(pairs)).to.deep.equal({ tp: 1, fn: 1, fp: 1, tn: 2 });
  });

  it('sensitivity, specificity, PPV, NPV, accuracy and kappa of a hand-checked table', () => {
    // TP 20, FP 5, FN 10, TN 15 (n 50): po = 35/50 = 0.7; reference 30+/20-, predicted 25+/25-;
    // pe = (25·30 + 25·20) / 50² = 0.5; kappa = (0.7 − 0.5) / (1 − 0.5) = 0.4.
    const f = labelFigures({ tp: 20, fp: 5, fn: 10, tn: 15 });
    expect(f).to.include({ n: 50, positives: 30, negatives: 20, tp: 20, fp: 5, fn: 10, tn: 15 });
    expect(f.sensitivity).to.be.closeTo(20 / 30, 1e-12);
    expect(f.specificity).to.be.closeTo(0.75, 1e-12);
    expect(f.ppv).to.be.closeTo(0.8, 1e-12);
    expect(f.npv).to.be.closeTo(0.6, 1e-12);
    expect(f.accuracy).to.be.closeTo(0.7, 1e-12);
    expect(f.kappa).to.be.closeTo(0.4, 1e-12);
  });

  it('kappa: 1 for perfect agreement on both classes, 0 for chance, negative below chance, null when undefined', () => {
    expect(cohensKappa({ tp: 3, fp: 0, fn: 0, tn: 2 })).to.be.closeTo(1, 1e-12);
    // Predicted positive for everything: po = pe = 0.5.
    expect(cohensKappa({ tp: 2, fp: 2, fn: 0, tn: 0 })).to.equal(0);
    // Always wrong, balanced: po 0, pe 0.5 → −1.
    expect(cohensKappa({ tp: 0, fp: 2, fn: 2, tn: 0 })).to.be.closeTo(-1, 1e-12);
    // Every study negative and predicted negative: pe = 1, kappa undefined.
    expect(cohensKappa({ tp: 0, fp: 0, fn: 0, tn: 4 })).to.equal(null);
    expect(cohensKappa({ tp: 0, fp: 0, fn: 0, tn: 0 })).to.equal(null);
  });

  it('a ratio with a zero denominator is null, not 0', () => {
    const f = labelFigures({ tp: 0, fp: 1, fn: 0, tn: 3 });
    expect(f.sensitivity).to.equal(null); // no positives in the set
    expect(f.npv).to.equal(1);
    expect(f.ppv).to.equal(0);
    expect(labelFigures({ tp: 0, fp: 0, fn: 0, tn: 0 }).accuracy).to.equal(null);
  });

  it('pools tables by summing them', () => {
    expect(
      pooled([
        { tp: 1, fp: 2, fn: 3, tn: 4 },
        { tp: 10, fp: 20, fn: 30, tn: 40 },
      ]),
    ).to.deep.equal({ tp: 11, fp: 22, fn: 33, tn: 44 });
  });

  it('nearest-rank percentiles, always a value that occurred', () => {
    expect(percentiles([15, 20, 35, 40, 50])).to.deep.equal({ n: 5, p50: 35, p90: 50, p95: 50, max: 50 });
    const ten = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    expect(percentiles(ten)).to.deep.equal({ n: 10, p50: 5, p90: 9, p95: 10, max: 10 });
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentiles(hundred)).to.deep.equal({ n: 100, p50: 50, p90: 90, p95: 95, max: 100 });
    expect(percentiles([7])).to.deep.equal({ n: 1, p50: 7, p90: 7, p95: 7, max: 7 });
    expect(percentiles([])).to.equal(null);
    expect(percentiles([Number.NaN, 3])).to.deep.equal({ n: 1, p50: 3, p90: 3, p95: 3, max: 3 });
  });

  it('failure reasons: the message before its details, numbers and UIDs folded', () => {
    expect(failureReason('no analyzable series in the study (CT 1.2.3: 2 slices)')).to.equal('no analyzable series in the study');
    expect(failureReason('study 1.2.840.10008.99 is not in the node')).to.equal('study N is not in the node');
    expect(failureReason('MedGemma bad_output: empty answer')).to.equal('MedGemma bad_output');
    expect(failureReason('timed out after 30 s (cancelled)')).to.equal('timed out after N s');
    expect(failureReason('')).to.equal('unknown');
  });

  it('tally counts values, most frequent first', () => {
    expect(Object.entries(tally(['b', 'a', 'b', 'c', 'a', 'b']))).to.deep.equal([
      ['b', 3],
      ['a', 2],
      ['c', 1],
    ]);
  });
});
