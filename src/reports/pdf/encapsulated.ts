import dcmjs, { type NaturalizedDataset } from 'dcmjs';
import type { ReportContent } from '../content.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../../dicom/implementation.js';
import { PdfReportError } from './errors.js';
import { daOrEmpty, dicomDateTime, sexOrEmpty, text, tmOrEmpty } from './dicom-values.js';
import { documentTitle, isSigned } from './format.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

export const ENCAPSULATED_PDF_STORAGE = '1.2.840.10008.5.1.4.1.1.104.1';
const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
export const DRAFT_SERIES_DESCRIPTION = 'AI DRAFT REPORT (PDF) - NOT FOR DIAGNOSIS';
export const SIGNED_SERIES_DESCRIPTION = 'AI-assisted report (PDF) - signed';
/** OB values longer than this cannot have an explicit 32-bit length (0xFFFFFFFF is "undefined"). */
const MAX_OB_LENGTH = 0xfffffffe;

export interface EncapsulatedPdfIds {
  sopInstanceUid: string;
  seriesInstanceUid: string;
  seriesNumber: number;
  instanceNumber: number;
  contentDateTime: Date;
}

/** PN: each component group (alphabetic, ideographic, phonetic) holds at most 64 characters. */
function pn(v: string | null): string {
  return v ? v.split('=').slice(0, 3).map((g) => text(g, 64)).join('=').replace(/=+$/, '') : '';
}

/**
 * dcmjs encodes every text value as UTF-8 whatever Specific Character Set says, so the set must
 * be ISO_IR 192 whenever the source declared one (its values were decoded into the content) or
 * any value is not ASCII; with neither, the default repertoire is right and none is written.
 */
function characterSet(c: ReportContent, ds: NaturalizedDataset): { SpecificCharacterSet?: string } {
  const nonAscii = /[^\x00-\x7f]/.test(JSON.stringify(ds, (_k, v: unknown) => (v instanceof ArrayBuffer ? undefined : v)));
  return c.study.specificCharacterSet || nonAscii ? { SpecificCharacterSet: 'ISO_IR 192' } : {};
}

/**
 * The PDF as an Encapsulated PDF Storage instance (PS3.3 A.45.1): Patient and General Study
 * copied from the source study, a new DOC series, General and SC Equipment, Encapsulated
 * Document and SOP Common; a Part 10 file in Explicit VR Little Endian.
 */
export function buildEncapsulatedPdf(content: ReportContent, pdf: Buffer, ids: EncapsulatedPdfIds): Buffer {
  if (pdf.length < 5 || pdf.subarray(0, 5).toString('latin1') !== '%PDF-') {
    throw new PdfReportError(`report ${content.reportId}: the document to encapsulate is not a PDF`);
  }
  if (pdf.length > MAX_OB_LENGTH - 1) throw new PdfReportError(`report ${content.reportId}: PDF of ${pdf.length} bytes is too large to encapsulate`);
  if (Number.isNaN(ids.contentDateTime.getTime())) throw new PdfReportError(`report ${content.reportId}: content date/time is not a date`);
  const when = dicomDateTime(ids.contentDateTime);
  const p = content.patient;
  const s = content.study;
  const signed = isSigned(content.state);

  // PS3.5 7.1.1: values have even length; the padding byte is not part of the document, and
  // Encapsulated Document Length says where it ends (PS3.3 C.24.2).
  const value = new Uint8Array(pdf.length + (pdf.length % 2));
  value.set(pdf);

  const ds: NaturalizedDataset = {
    // SOP Common (C.12.1)
    SOPClassUID: ENCAPSULATED_PDF_STORAGE,
    SOPInstanceUID: ids.sopInstanceUid,
    InstanceCreationDate: when.da,
    InstanceCreationTime: when.tm,
    // Patient (C.7.1.1)
    PatientName: pn(p.name),
    PatientID: text(p.id, 64),
    ...(p.issuer ? { IssuerOfPatientID: text(p.issuer, 64) } : {}),
    PatientBirthDate: daOrEmpty(p.birthDate),
    PatientSex: sexOrEmpty(p.sex),
    // General Study (C.7.2.1)
    StudyInstanceUID: s.studyInstanceUid,
    StudyDate: daOrEmpty(s.studyDate),
    StudyTime: tmOrEmpty(s.studyTime),
    ReferringPhysicianName: pn(s.referringPhysicianName),
    StudyID: text(s.studyId, 16),
    AccessionNumber: text(s.accessionNumber, 16),
    ...(s.studyDescription ? { StudyDescription: text(s.studyDescription, 64) } : {}),
    // Encapsulated Document Series (C.24.1)
    Modality: 'DOC',
    SeriesInstanceUID: ids.seriesInstanceUid,
    SeriesNumber: ids.seriesNumber,
    SeriesDescription: signed ? SIGNED_SERIES_DESCRIPTION : DRAFT_SERIES_DESCRIPTION,
    // General Equipment (C.7.5.1)
    Manufacturer: 'RadiantAI',
    ...(content.node.institutionName ? { InstitutionName: text(content.node.institutionName, 64) } : {}),
    StationName: text(content.node.aeTitle, 16),
    SoftwareVersions: text(content.node.softwareVersion, 64),
    // SC Equipment (C.8.6.1): made on a workstation, not digitized from anything
    ConversionType: 'WSD',
    // Encapsulated Document (C.24.2)
    InstanceNumber: ids.instanceNumber,
    ContentDate: when.da,
    ContentTime: when.tm,
    AcquisitionDateTime: when.dt,
    // The identification and the draft banner are drawn into the pages.
    BurnedInAnnotation: 'YES',
    DocumentTitle: text(documentTitle(content), 1024),
    ConceptNameCodeSequence: [{ CodeValue: '18748-4', CodingSchemeDesignator: 'LN', CodeMeaning: 'Diagnostic imaging report' }],
    VerificationFlag: signed ? 'VERIFIED' : 'UNVERIFIED',
    MIMETypeOfEncapsulatedDocument: 'application/pdf',
    EncapsulatedDocument: value.buffer,
    EncapsulatedDocumentLength: pdf.length,
  };
  const dataset: NaturalizedDataset = { ...characterSet(content, ds), ...ds };

  const meta: NaturalizedDataset = {
    FileMetaInformationVersion: new Uint8Array([0x00, 0x01]).buffer,
    MediaStorageSOPClassUID: ENCAPSULATED_PDF_STORAGE,
    MediaStorageSOPInstanceUID: ids.sopInstanceUid,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  };
  try {
    const file = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
    file.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
    return Buffer.from(file.write());
  } catch (err) {
    throw new PdfReportError(`report ${content.reportId}: writing the Encapsulated PDF failed: ${(err as Error).message}`, { cause: err });
  }
}
