import { expect } from 'chai';
import { formatTable, scoreStudy, summarize, type StudyOutcome } from '../../src/analysis/eval/eval-result.js';

const model = {
  name: 'm.gguf',
  sha256: 'ab',
  quantization: 'Q4_K_M',
  backend: 'llama-server',
  mmprojSha256: null,
  validated: false,
  validation: 'not listed',
};
const meta = { manifest: '/m.jsonl', startedAt: 't0', finishedAt: 't1', model };

describe('unit: eval result', () => {
  it('scores a study: labels predicted from the findings, expected findings found or missed', () => {
    const s = scoreStudy(
      { pneumothorax: true, effusion: false, nodule: true },
      ['right pneumothorax', 'nodule'],
      [{ index: 0, description: 'Small right pneumothorax', category: 'abnormal' }],
      'No effusion.',
    );
    expect(s.predicted).to.deep.equal({ pneumothorax: true, effusion: false, nodule: false });
    expect(s.evidence).to.deep.equal({ pneumothorax: { where: 'finding 0', excerpt: 'Small right pneumothorax' } });
    expect(s.expectedFindings).to.deep.equal({ found: ['right pneumothorax'], missed: ['nodule'] });
  });

  it('summarises counts per label over analysed studies only, failures by reason, flags by rule, latency', () => {
    const base = { safetyFlags: [], analysisId: 1, studyInstanceUid: '1.2' };
    const outcomes: StudyOutcome[] = [
      {
        ...base,
        line: 1,
        id: 'a',
        status: 'succeeded',
        expected: { ptx: true, eff: false },
        predicted: { ptx: true, eff: true },
        expectedFindings: { found: ['ptx'], missed: [] },
        safetyFlags: [
          { target: 0, phrase: 'definite', rule: 'certainty' },
          { target: 'impression', phrase: 'diagnosis is', rule: 'definitive_diagnosis' },
          { target: 1, phrase: 'certainly', rule: 'certainty' },
        ],
        timings: { totalMs: 100, modelMs: 80, wallMs: 120 },
        model: { name: 'm.gguf', sha256: 'ab', backend: 'llama-server' },
      },
      {
        ...base,
        line: 2,
        id: 'b',
        status: 'succeeded',
        expected: { ptx: true },
        predicted: { ptx: false },
        expectedFindings: { found: [], missed: ['x', 'y'] },
        timings: { totalMs: 300, wallMs: 310 },
        model: { name: 'm.gguf', sha256: 'ab', backend: 'llama-server' },
      },
      {
        ...base,
        line: 3,
        id: 'c',
        status: 'failed',
        expected: { ptx: false },
        error: 'study 1.2.3 is not in the node',
        reason: 'study N is not in the node',
        timings: { wallMs: 5 },
      },
      {
        ...base,
        line: 4,
        id: 'd',
        status: 'failed',
        expected: { eff: true },
        error: 'study 1.2.4 is not in the node',
        reason: 'study N is not in the node',
        timings: { wallMs: 7 },
      },
    ];
    const r = summarize(outcomes, meta);
    expect(r.studies).to.deep.equal({ total: 4, analysed: 2, failed: 2 });
    expect(Object.keys(r.labels)).to.deep.equal(['eff', 'ptx']);
    expect(r.labels.ptx).to.include({ n: 2, positives: 2, tp: 1, fn: 1, fp: 0, tn: 0, sensitivity: 0.5 });
    expect(r.labels.eff).to.include({ n: 1, negatives: 1, fp: 1, tn: 0, specificity: 0 });
    expect(r.overall).to.include({ n: 3, tp: 1, fn: 1, fp: 1, tn: 0 });
    expect(r.expectedFindings).to.deep.equal({ expected: 3, found: 1, recall: 1 / 3 });
    expect(r.safetyFlags).to.deep.equal({ total: 3, analysesWithFlags: 1, byRule: { certainty: 2, definitive_diagnosis: 1 } });
    expect(r.failures).to.deep.equal({ total: 2, byReason: { 'study N is not in the node': 2 } });
    expect(r.latency.totalMs).to.deep.equal({ n: 2, p50: 100, p90: 300, p95: 300, max: 300 });
    expect(r.latency.modelMs).to.deep.equal({ n: 1, p50: 80, p90: 80, p95: 80, max: 80 });
    expect(r.latency.wallMs!.n).to.equal(4);
    expect(r.answeredBy).to.deep.equal(['m.gguf@ab']);
    const table = formatTable(r);
    expect(table).to.match(/^ptx +2 +1 +0 +0 +1 +50\.0% +— +100\.0% +0\.0% +50\.0% +0\.00$/m); // kappa: po = pe = 0.5
    expect(table).to.include('validated NO (not listed)').and.include('study N is not in the node: 2').and.include('certainty: 2');
  });
});
