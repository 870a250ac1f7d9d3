import { expect } from 'chai';
import { analysisSources, findMention, normalizeText } from '../../src/analysis/eval/label-match.js';

const said = (text: string) => [{ where: 'finding 0', text }];
const names = (label: string, text: string) => findMention(label, said(text)) !== undefined;

describe('unit: eval label matching', () => {
  it('matches whole words, case-insensitive, "_"/"-" as spaces, a plural on the last word', () => {
    expect(names('pneumothorax', 'Small right PNEUMOTHORAX.')).to.equal(true);
    expect(names('pleural_effusion', 'Bilateral pleural effusions.')).to.equal(true);
    expect(names('Pleural-Effusion', 'small pleural effusion on the left')).to.equal(true);
    expect(names('nodule', 'nodular opacity')).to.equal(false);
    expect(names('rib fracture', 'fracture of the 5th rib')).to.equal(false); // the label's words in its order
    expect(names('mass', 'massive consolidation')).to.equal(false);
    expect(normalizeText("Can't exclude a pneumo-thorax")).to.equal('cannot exclude a pneumo thorax');
  });

  it('a negated mention does not count: before (5 words) or after it, within its clause', () => {
    expect(names('pneumothorax', 'No pneumothorax.')).to.equal(false);
    expect(names('pleural effusion', 'No pneumothorax or pleural effusion.')).to.equal(false);
    expect(names('pleural effusion', 'No pneumothorax. Bilateral pleural effusions.')).to.equal(true);
    expect(names('pneumothorax', 'Pneumothorax is not seen.')).to.equal(false);
    expect(names('pneumothorax', 'The pneumothorax has resolved.')).to.equal(false);
    expect(names('pneumothorax', 'Without evidence of pneumothorax')).to.equal(false);
    expect(names('fracture', "This isn't a fracture")).to.equal(false);
    expect(names('effusion', 'No consolidation, but a small effusion')).to.equal(true);
    expect(names('effusion', 'no pneumothorax, no consolidation, the heart is enlarged with a large effusion')).to.equal(true);
  });

  it('"cannot exclude" is a possible finding (positive); pseudo-negations negate nothing', () => {
    expect(names('pneumothorax', 'Pneumothorax cannot be excluded.')).to.equal(true);
    expect(names('pneumothorax', 'cannot exclude a small pneumothorax')).to.equal(true);
    expect(names('pneumothorax', "Can't rule out pneumothorax")).to.equal(true);
    expect(names('pneumothorax', 'pneumothorax not excluded')).to.equal(true);
    expect(names('nodule', 'No change in the size of the nodule.')).to.equal(true);
    expect(names('nodule', 'No interval change of the nodule.')).to.equal(true);
  });

  it('searches non-normal findings and the impression; gives where and the sentence', () => {
    const findings = [
      { index: 0, description: 'Pneumothorax', category: 'normal' },
      { index: 1, description: 'Opacity in the right lower lobe', category: 'abnormal' },
    ];
    const sources = analysisSources(findings, 'Appearances suggestive of pneumonia. No effusion.');
    expect(sources.map((s) => s.where)).to.deep.equal(['finding 1', 'impression']);
    expect(findMention('pneumothorax', sources)).to.equal(undefined);
    expect(findMention('opacity', sources)).to.deep.equal({ where: 'finding 1', excerpt: 'Opacity in the right lower lobe' });
    expect(findMention('pneumonia', sources)).to.deep.equal({ where: 'impression', excerpt: 'Appearances suggestive of pneumonia.' });
    expect(findMention('effusion', sources)).to.equal(undefined);
    expect(findMention('   ', sources)).to.equal(undefined);
    expect(analysisSources([], null)).to.deep.equal([]);
  });
});
