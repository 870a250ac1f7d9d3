import { expect } from 'chai';
import fs from 'node:fs';
import { conformanceStatement } from '../../src/http/conformance.js';
import { markdownToHtml } from '../../src/http/markdown.js';
import { TRANSCODE_TARGETS } from '../../src/dicom/transcode-syntaxes.js';

describe('unit: the DICOM Conformance Statement', () => {
  const text = conformanceStatement();
  it('docs/conformance.md is what the code generates (run `npm run conformance` after changing a table)', () => {
    expect(fs.readFileSync('docs/conformance.md', 'utf8') === text, 'docs/conformance.md differs from the generated statement').to.equal(
      true,
    );
  });
  it('is written from the tables: every transcoding target, the C-FIND SOP classes, ISO 2022 IR 87, QIDO keys', () => {
    for (const uid of TRANSCODE_TARGETS) expect(text).to.include(uid);
    expect(text).to.include('1.2.840.10008.5.1.4.1.2.2.1');
    expect(text).to.include('`ISO 2022 IR 87`');
    expect(text).to.match(/\| PatientName \| \(0010,0010\) \| PN \|/);
  });
  it('renders as HTML with its tables, escaped', () => {
    const html = markdownToHtml('# T\n\n| a | b |\n|---|---|\n| `x|y` | <z> |\n\n- one\n', 'T');
    expect(html).to.include('<h1>T</h1>');
    expect(html).to.include('<td><code>x|y</code></td><td>&lt;z&gt;</td>');
    expect(html).to.include('<ul><li>one</li></ul>');
  });
});
