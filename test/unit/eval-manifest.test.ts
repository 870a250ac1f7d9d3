import path from 'node:path';
import { expect } from 'chai';
import { ManifestError, parseManifest } from '../../src/analysis/eval/manifest.js';

const problemsOf = (text: string): string[] => {
  try {
    parseManifest(text, 'm.jsonl', '/data');
  } catch (err) {
    if (err instanceof ManifestError) return err.problems;
    throw err;
  }
  throw new Error('no ManifestError');
};

describe('unit: eval manifest', () => {
  it('reads one study a line: files (relative to the manifest) or a UID, labels, findings, prompt', () => {
    const text = [
      '{"study": "ct/chest-01", "labels": {"pneumothorax": true, "pleural effusion": false}}',
      '',
      '{"id": "known", "studyInstanceUid": "1.2.3.4", "labels": {"nodule": true}, "findings": ["nodule"], "prompt": "focused", "focus": "nodule?"}',
      '{"study": ["/abs/a.dcm", "b.dcm"], "labels": {"fracture": false}, "indication": "fall", "prompt": "radiant.primary"}',
    ].join('\n');
    const cases = parseManifest(text, 'm.jsonl', '/data');
    expect(cases).to.have.length(3);
    expect(cases[0]).to.deep.equal({
      line: 1,
      id: 'line 1',
      paths: [path.resolve('/data', 'ct/chest-01')],
      labels: { pneumothorax: true, 'pleural effusion': false },
      findings: [],
      analysisType: 'primary',
    });
    expect(cases[1]).to.deep.equal({
      line: 3,
      id: 'known',
      studyInstanceUid: '1.2.3.4',
      labels: { nodule: true },
      findings: ['nodule'],
      analysisType: 'focused',
      focus: 'nodule?',
    });
    expect(cases[2]!.paths).to.deep.equal(['/abs/a.dcm', path.resolve('/data', 'b.dcm')]);
    expect(cases[2]).to.include({ indication: 'fall', analysisType: 'primary' }); // a template id names its type
  });

  it('names the line and the field of every problem', () => {
    const problems = problemsOf(
      [
        '{"study": "a", "labels": {"x": true}}',
        '{"study": "a", "labels": {"x": true}', // not JSON
        '{"study": "a", "labels": {"x": "yes"}}',
        '{"study": "a", "studyInstanceUid": "1.2", "labels": {"x": true}}',
        '{"labels": {"x": true}}',
        '{"study": "a", "labels": {}}',
        '{"study": "a", "labels": {"x": true}, "prompt": "focused"}',
        '{"study": "a", "labels": {"x": true}, "prompt": "essay"}',
        '{"study": "a", "labels": {"x": true}, "label": "typo"}',
        '{"studyInstanceUid": "abc", "labels": {"x": true}}',
        '[1, 2]',
      ].join('\n'),
    );
    const at = (line: number) => problems.filter((p) => p.startsWith(`m.jsonl:${line}: `));
    expect(at(1)).to.deep.equal([]);
    expect(at(2)[0]).to.match(/^m\.jsonl:2: not JSON/);
    expect(at(3)[0]).to.match(/^m\.jsonl:3: labels\.x: each label is true \(present\) or false \(absent\)/);
    expect(at(4)[0]).to.match(/^m\.jsonl:4: study: give either "study".*not both/);
    expect(at(5)[0]).to.match(/^m\.jsonl:5: study: give either/);
    expect(at(6)[0]).to.match(/^m\.jsonl:6: labels: at least one label/);
    expect(at(7)[0]).to.match(/^m\.jsonl:7: focus: a "focused" prompt needs "focus"/);
    expect(at(8)[0]).to.match(/^m\.jsonl:8: prompt: one of primary, comparison, focused/);
    expect(at(9)[0]).to.match(/^m\.jsonl:9: .*label/);
    expect(at(10)[0]).to.match(/^m\.jsonl:10: studyInstanceUid: .*UID/);
    expect(at(11)).to.have.length.greaterThan(0);
  });

  it('an empty manifest is an error; the list of problems is bounded', () => {
    expect(problemsOf('\n\n')).to.deep.equal(['m.jsonl: no study (one JSON object a line)']);
    expect(problemsOf(Array.from({ length: 100 }, () => 'x').join('\n'))).to.have.length(20);
  });
});
