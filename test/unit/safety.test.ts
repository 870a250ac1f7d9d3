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
  confidence_percent: 70,
  image_indices: [0, 1],
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
  it('reads the answer: confidence to 0..1, indices only within the images sent', () => {
    const a = readModelAnswer({ ...answer, findings: [{ ...finding, image_indices: [0, 5, 0] }] }, 2);
    expect(a.findings[0]!.confidence).to.equal(0.7);
    expect(a.findings[0]!.image_indices).to.deep.equal([0]);
    expect(a.flags).to.include('image_indices_dropped');
  });
  it('clamps confidence, drops bad regions and non-finite measurements', () => {
    const a = readModelAnswer(
      {
        ...answer,
        findings: [{ ...finding, confidence_percent: 150, region: { image_index: 0, x_min: 10, y_min: 10, x_max: 5, y_max: 20 } }],
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
  it('keeps a valid region as a box', () => {
    const a = readModelAnswer(
      { ...answer, findings: [{ ...finding, region: { image_index: 1, x_min: 1, y_min: 2, x_max: 30, y_max: 40 } }] },
      2,
      896,
    );
    expect(a.findings[0]!.region).to.deep.equal({ imageIndex: 1, box: [1, 2, 30, 40] });
  });
});
