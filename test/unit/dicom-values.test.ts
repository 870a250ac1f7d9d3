import { expect } from 'chai';
import * as vr from '../../src/dicom/vr-values.js';
import { toDicomJsonValue } from '../../src/query/dicom-json.js';
import { lateralityCode, modalityCode, severityCode, ucumCode, wordsCode } from '../../src/reports/sr/codes.js';

describe('unit: DICOM JSON values', () => {
  it('PN as Alphabetic, numbers as numbers, multi-valued CS split', () => {
    expect(toDicomJsonValue('PN', 'DOE^JANE')).to.deep.equal([{ Alphabetic: 'DOE^JANE' }]);
    expect(toDicomJsonValue('DA', '20200101')).to.deep.equal(['20200101']);
    expect(toDicomJsonValue('IS', '12')).to.deep.equal([12]);
    expect(toDicomJsonValue('DS', '1.5')).to.deep.equal([1.5]);
    expect(toDicomJsonValue('US', 5)).to.deep.equal([5]);
    expect(toDicomJsonValue('CS', 'CT\\MR')).to.deep.equal(['CT', 'MR']);
  });
});

describe('unit: VR value writers', () => {
  it('DS keeps 16 characters; DA from a date; CS upper-cased; LO without backslash', () => {
    expect(vr.ds(1 / 3)).to.equal('0.33333333333333');
    expect(vr.ds(1 / 3).length).to.be.at.most(16);
    expect(vr.ds(12)).to.equal('12');
    expect(vr.da(new Date(Date.UTC(2020, 0, 2, 3, 4, 5)))).to.equal('20200102');
    expect(vr.cs('abc')).to.equal('ABC');
    expect(vr.lo('a\\b')).to.equal('a/b');
    expect(vr.daFromStored('2020-01-02')).to.equal('20200102');
    expect(vr.isNonAscii('é')).to.equal(true);
    expect(vr.isNonAscii('e')).to.equal(false);
  });
});

describe('unit: SR codes', () => {
  it('SNOMED laterality and severity, none for not applicable', () => {
    expect(lateralityCode('left')).to.deep.equal({ value: '7771000', scheme: 'SCT', meaning: 'Left' });
    expect(lateralityCode('not_applicable')).to.equal(null);
    expect(severityCode('mild')).to.deep.equal({ value: '255604002', scheme: 'SCT', meaning: 'Mild' });
  });
  it('DCM modality codes, UCUM units, stable private codes for free words', () => {
    expect(modalityCode('CT')).to.deep.equal({ value: 'CT', scheme: 'DCM', meaning: 'Computed Tomography' });
    expect(modalityCode('ZZ')).to.equal(null);
    expect(ucumCode('mm')).to.deep.include({ value: 'mm', scheme: 'UCUM' });
    const a = wordsCode('F', 'Small nodule');
    expect(a).to.deep.equal(wordsCode('F', 'Small nodule'));
    expect(a.meaning).to.equal('Small nodule');
    expect(a.value).to.not.equal(wordsCode('F', 'Large mass').value);
  });
});
