import { expect } from 'chai';
import { decodeText, unknownCharacterSets } from '../../src/dicom/charset.js';
import { readLegacyValue, withoutPadding } from '../../src/dicom/vr-values.js';

const bytes = (s: string) => Buffer.from(s, 'latin1');

/** Examples from PS3.5 Annexes H (Japanese), I (Korean), J (Chinese) and the Greek ISO 2022 case. */
describe('unit: Specific Character Set decoding (PS3.5 6.1)', () => {
  it('ISO 2022 IR 87: JIS X 0208 in G0 by ESC $ B, ^ and = inside two-byte characters (H.3.1)', () => {
    const pn = 'Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B';
    expect(decodeText(bytes(pn), ['', 'ISO 2022 IR 87'], true)).to.equal('Yamada^Tarou=山田^太郎=やまだ^たろう');
  });

  it('ISO 2022 IR 13 with IR 87: half-width katakana in G1, back to the initial state at ^ and = (H.3.2)', () => {
    const pn = '\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J';
    expect(decodeText(bytes(pn), ['ISO 2022 IR 13', 'ISO 2022 IR 87'], true)).to.equal('ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう');
  });

  it('ISO 2022 IR 149: KS X 1001 in G1 by ESC $ ) C (I.2)', () => {
    const pn = 'Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf';
    expect(decodeText(bytes(pn), ['', 'ISO 2022 IR 149'], true)).to.equal('Hong^Gildong=洪^吉洞=홍^길동');
  });

  it('ISO 2022 IR 58: GB 2312 in G1 by ESC $ ) A (J.3), and GB18030 without code extensions (J.1)', () => {
    const pn = 'Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab=';
    expect(decodeText(bytes(pn), ['', 'ISO 2022 IR 58'], true)).to.equal('Zhang^XiaoDong=张^小东=');
    expect(decodeText(bytes('Wang^XiaoDong=\xcd\xf5^\xd0\xa1\x96\x7c='), ['GB18030'], true)).to.equal('Wang^XiaoDong=王^小東=');
  });

  it('ISO 2022 IR 126 by escape, JIS X 0212 (IR 159), and the single-byte sets', () => {
    expect(decodeText(bytes('Dionysios=\x1b-F\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2'), ['', 'ISO 2022 IR 126'], true)).to.equal(
      'Dionysios=Διονυσιος',
    );
    expect(decodeText(bytes('\x1b$(D\x30\x21\x1b(B'), ['', 'ISO 2022 IR 159'])).to.equal('丂');
    expect(decodeText(bytes('Test-\xe9\xfc'), ['ISO_IR 100'])).to.equal('Test-éü');
    expect(decodeText(bytes('\xc4'), ['ISO_IR 144'])).to.equal('Ф');
    expect(decodeText(bytes('\xe0'), ['ISO_IR 138'])).to.equal('א');
    expect(decodeText(bytes('\xa4'), ['ISO_IR 203'])).to.equal('€');
    expect(decodeText(Buffer.from('Jürgen', 'utf8'), ['ISO_IR 192'])).to.equal('Jürgen');
  });

  it('a backslash resets to value 1 between values; unknown terms read as the default repertoire', () => {
    expect(decodeText(bytes('\x1b$)C\xc8\xab\\\xe9'), ['ISO 2022 IR 100', 'ISO 2022 IR 149'])).to.equal('홍\\é');
    expect(unknownCharacterSets(['ISO_IR 100', 'ISO 2022 IR 87', 'KOI8'])).to.deep.equal(['KOI8']);
    expect(decodeText(bytes('A\xe9'), ['KOI8'])).to.equal('Aé');
  });
});

describe('unit: values as read (padding per VR, legacy forms)', () => {
  it('trailing NUL and space padding go for every string VR; leading spaces only where insignificant', () => {
    expect(withoutPadding('PN', 'BRAINIX\0')).to.equal('BRAINIX');
    expect(withoutPadding('LO', ' Head \0')).to.equal('Head');
    expect(withoutPadding('CS', ' MR ')).to.equal('MR');
    expect(withoutPadding('UI', '1.2.3\0')).to.equal('1.2.3');
    expect(withoutPadding('LT', '  indented text  ')).to.equal('  indented text');
    expect(withoutPadding('UT', ' x\0')).to.equal(' x');
  });

  it('ACR-NEMA DA and TM forms are normalised; anything else is kept as written', () => {
    expect(readLegacyValue('DA', '1997.04.24')).to.equal('19970424');
    expect(readLegacyValue('TM', '10:22:33.5')).to.equal('102233.5');
    expect(readLegacyValue('DA', '19970424')).to.equal('19970424');
    expect(readLegacyValue('DA', '24/04/1997')).to.equal('24/04/1997');
    expect(readLegacyValue('LO', '1997.04.24')).to.equal('1997.04.24');
  });
});
