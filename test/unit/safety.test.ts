import { expect } from 'chai';
import { readModelAnswer } from '../../src/analysis/findings-schema.js';
import { EngineError } from '../../src/medgemma/engine.js';
import { parseModelJson, validateShape } from '../../src/medgemma/output.js';
import { hasRepetitionLoop, isBlank, stripThinking } from '../../src/medgemma/answer-text.js';

const finding = {
  description: 'Nodule',
  anatomical_location: 'right upper lobe',
  laterality: 'right',
  category: 'abnormal',
  severity: 'mild',
  confidence: 0.7,
  image_numbers: [1, 2],
  recommendation: 'follow-up CT',
};
const answer = { findings: [finding], measurements: [], impression: 'x', comparison_with_prior: '', technical_limitations: '' };

describe('unit: AI output safety and reading', () => {
  it('strips thinking blocks, terminated or not', () => {
    expect(stripThinking('<unused94>hmm<unused95>{"a":1}')).to.deep.equal({ text: '{"a":1}', notes: ['thinking_stripped'] });
    expect(stripThinking('<unused94>thinking... {"a":1}')).to.deep.equal({ text: '{"a":1}', notes: ['thinking_unterminated'] });
  });
  it('tells empty output and repetition loops', () => {
    expect(isBlank('  {} ')).to.equal(true);
    expect(hasRepetitionLoop('abc '.repeat(20))).to.equal(true);
    expect(hasRepetitionLoop('A small nodule in the right upper lobe.')).to.equal(false);
  });
  it('checks the JSON shape: types, required keys, enums', () => {
    const schema = {
      type: 'object',
      required: ['n', 'k'],
      properties: { n: { type: 'integer' }, k: { type: 'string', enum: ['a', 'b'] }, xs: { type: 'array', items: { type: 'number' } } },
    };
    expect(validateShape({ n: 1, k: 'a', xs: [1.5] }, schema)).to.deep.equal([]);
    expect(validateShape({ n: 'one', k: 'c', xs: ['x'] }, schema)).to.have.length(3);
    expect(validateShape({ n: 1 }, schema).join()).to.match(/k/);
    expect(() => parseModelJson('not json', schema)).to.throw(EngineError, /not JSON/);
    expect(() => parseModelJson('{"n":1}', schema)).to.throw(EngineError, /schema/);
  });
  it('reads the answer: confidence 0..1, image numbers (from 1) to indices only within the images sent', () => {
    const a = readModelAnswer({ ...answer, findings: [{ ...finding, image_numbers: [1, 5, 1, 0] }] }, 2, 896);
    expect(a.findings[0]!.confidence).to.equal(0.7);
    expect(a.findings[0]!.image_indices).to.deep.equal([0]);
    expect(a.flags).to.include('image_indices_dropped');
  });
  it('clamps confidence, drops bad regions and non-finite measurements', () => {
    const a = readModelAnswer(
      {
        ...answer,
        findings: [{ ...finding, confidence: 1.5, region: { image_number: 1, box_2d: [10, 10, 20, 5] } }],
        measurements: [
          { finding: 'Nodule', quantity: 'diameter', value: 8, unit: 'mm' },
          { finding: 'Nodule', quantity: 'diameter', value: Infinity, unit: 'mm' },
        ],
      },
      2,
      896,
    );
    expect(a.findings[0]!.confidence).to.equal(1);
    expect(a.findings[0]!.region).to.equal(null);
    expect(a.measurements).to.have.length(1);
    expect(a.flags).to.include.members(['confidence_clamped', 'region_dropped', 'non_finite_measurement_dropped']);
  });
  it('keeps a valid box_2d [y0, x0, y1, x1] on 0–1000 and converts it to prepared-image pixels [x0, y0, x1, y1]', () => {
    const a = readModelAnswer(
      { ...answer, findings: [{ ...finding, region: { image_number: 2, box_2d: [100, 250, 500, 1000] } }] },
      2,
      896,
    );
    expect(a.findings[0]!.region).to.deep.equal({ imageIndex: 1, box: [224, 89.6, 896, 448], box2d: [100, 250, 500, 1000] });
    const out = (box_2d: number[], n = 1) =>
      readModelAnswer({ ...answer, findings: [{ ...finding, region: { image_number: n, box_2d } }] }, 2, 896).findings[0]!.region;
    expect(out([0, 0, 1000, 1000])).to.deep.include({ box: [0, 0, 896, 896] });
    expect(out([0, 0, 1001, 10])).to.equal(null); // off the 0–1000 scale
    expect(out([0, 0, 10])).to.equal(null); // not four numbers
    expect(out([0, 0, 10, 10], 3)).to.equal(null); // no image 3
    expect(out([Infinity, 0, 10, 10])).to.equal(null);
  });
  it('a confidence of 1e999 (Infinity after JSON.parse) or below 0 is clamped and flagged, not a failed answer', () => {
    const a = readModelAnswer(JSON.parse(JSON.stringify({ ...answer, findings: [finding, finding] }).replace('0.7', '1e999')), 2, 896);
    expect(a.findings.map((f) => f.confidence)).to.deep.equal([1, 0.7]);
    expect(a.flags).to.include('confidence_clamped');
    expect(readModelAnswer({ ...answer, findings: [{ ...finding, confidence: -0.2 }] }, 2, 896).findings[0]!.confidence).to.equal(0);
  });
});
