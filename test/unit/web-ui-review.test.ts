import { expect } from 'chai';
import { confidenceLabel, findingsPatch, placeLabel, type FindingFields } from '../../ui/src/lib/review.js';

/** The study review's pure helpers (ui/src/lib/review.ts): the PATCH body of one finding's change, display forms. */
describe('web UI review helpers', () => {
  const findings: FindingFields[] = [
    {
      number: 1,
      description: 'Nodule.',
      anatomical_location: 'right upper lobe',
      laterality: 'right',
      category: 'abnormal',
      severity: 'mild',
      recommendation: null,
    },
    {
      number: 2,
      description: 'Atelectasis.',
      anatomical_location: null,
      laterality: 'left',
      category: null,
      severity: null,
      recommendation: 'Correlate.',
    },
  ];

  it('keeps every other finding as it is (number and text: the API removes a finding left out)', () => {
    expect(findingsPatch(findings, 2, { decision: 'rejected', decision_reason: '  motion  ' })).to.deep.equal([
      { number: 1, description: 'Nodule.' },
      { number: 2, description: 'Atelectasis.', decision: 'rejected', decision_reason: 'motion' },
    ]);
    expect(findingsPatch(findings, 1, { decision: 'accepted' })[0]).to.deep.equal({
      number: 1,
      description: 'Nodule.',
      decision: 'accepted',
      decision_reason: null,
    });
    expect(() => findingsPatch(findings, 3, { decision: 'accepted' })).to.throw('finding 3');
  });

  it('sends an edit with blank fields as null and the text trimmed', () => {
    const [, edited] = findingsPatch(findings, 2, {
      edit: {
        description: ' Linear atelectasis. ',
        anatomical_location: ' ',
        laterality: '',
        severity: 'moderate',
        recommendation: 'None.',
      },
    });
    expect(edited).to.deep.equal({
      number: 2,
      description: 'Linear atelectasis.',
      anatomical_location: null,
      laterality: null,
      severity: 'moderate',
      recommendation: 'None.',
    });
  });

  it('shows confidence as a percentage and the place with its side', () => {
    expect(confidenceLabel(0.604)).to.equal('60%');
    expect(confidenceLabel(null)).to.equal('—');
    expect(placeLabel('upper lobe', 'right')).to.equal('upper lobe (right)');
    expect(placeLabel('right upper lobe', 'right')).to.equal('right upper lobe');
    expect(placeLabel(null, 'left')).to.equal('left');
    expect(placeLabel('liver', 'not_applicable')).to.equal('liver');
    expect(placeLabel(null, null)).to.equal('—');
  });
});
