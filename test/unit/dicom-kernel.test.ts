import { expect } from 'chai';
import { keyword, tag, tagNumber, tags, vrOf } from '../../src/dicom/dictionary.js';
import { TS, compressedMediaType, isNativePixelEncoding, transferSyntax } from '../../src/dicom/transfer-syntax.js';
import { DimseStatus, isPendingStatus, isWarningStatus } from '../../src/dicom/dimse-status.js';

describe('unit: the DICOM kernel tables', () => {
  it('the tag dictionary goes keyword -> tag -> keyword and knows the VR (PS3.6)', () => {
    expect(tag('PatientID')).to.equal('00100020');
    expect(tagNumber('PixelData')).to.equal(0x7fe00010);
    expect(keyword('0020000D')).to.equal('StudyInstanceUID');
    expect(keyword(0x00080018)).to.equal('SOPInstanceUID');
    expect(keyword('(0008,0060)')).to.equal('Modality');
    expect(vrOf('00100010')).to.equal('PN');
    expect(vrOf(0x00280010)).to.equal('US');
    expect(keyword('00091001'), 'private').to.equal(undefined);
    expect(tags('Rows', 'Columns')).to.deep.equal({ Rows: '00280010', Columns: '00280011' });
    expect(() => tag('NoSuchKeyword')).to.throw();
  });

  it('the transfer-syntax table (PS3.5 A, PS3.18 8.7.3)', () => {
    expect(TS.ExplicitVRLittleEndian).to.equal('1.2.840.10008.1.2.1');
    const implicit = transferSyntax('1.2.840.10008.1.2');
    expect(implicit).to.include({ explicitVr: false, littleEndian: true, encapsulated: false });
    expect(transferSyntax(TS.ExplicitVRBigEndian)).to.include({ littleEndian: false, encapsulated: false });
    expect(transferSyntax(TS.RLELossless)).to.include({ encapsulated: true, lossy: false });
    expect(compressedMediaType(TS.RLELossless)).to.equal('image/dicom-rle');
    expect(isNativePixelEncoding(TS.DeflatedExplicitVRLittleEndian)).to.equal(true);
    expect(isNativePixelEncoding(TS.HTJ2K)).to.equal(false);
    expect(transferSyntax('1.2.3')).to.equal(undefined);
  });

  it('DIMSE statuses (PS3.7 C)', () => {
    expect(DimseStatus.Success).to.equal(0);
    expect(isPendingStatus(0xff00)).to.equal(true);
    expect(isPendingStatus(0xff01)).to.equal(true);
    expect(isPendingStatus(0x0000)).to.equal(false);
    expect(isWarningStatus(0xb000)).to.equal(true);
    expect(isWarningStatus(0xa700)).to.equal(false);
  });
});
