import type { NaturalizedDataset } from 'dcmjs';
import type { ReportContent } from '../content.js';
import { patientAndStudy, setCharacterSet } from '../dicom/source-modules.js';
import { lo, sh, st } from '../../dicom/vr-values.js';
import { writePart10 } from '../dicom/write-part10.js';
import { ENCAPSULATED_PDF_SOP_CLASS } from '../../dicom/uids.js';
import { PdfReportError } from './errors.js';
import { dicomDateTime } from './dicom-values.js';
import { documentTitle, isSigned } from './format.js';
import { reportSeriesDescription } from '../series.js';

export const ENCAPSULATED_PDF_STORAGE = ENCAPSULATED_PDF_SOP_CLASS;
/** OB values longer than this cannot have an explicit 32-bit length (0xFFFFFFFF is "undefined"). */
const MAX_OB_LENGTH = 0xfffffffe;

export interface EncapsulatedPdfIds {
  sopInstanceUid: string;
  seriesInstanceUid: string;
  seriesNumber: number;
  instanceNumber: number;
  contentDateTime: Date;
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
  if (pdf.length > MAX_OB_LENGTH - 1)
    throw new PdfReportError(`report ${content.reportId}: PDF of ${pdf.length} bytes is too large to encapsulate`);
  if (Number.isNaN(ids.contentDateTime.getTime())) throw new PdfReportError(`report ${content.reportId}: content date/time is not a date`);
  const when = dicomDateTime(ids.contentDateTime);
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
    // Patient (C.7.1.1) and General Study (C.7.2.1), as the source study has them
    ...patientAndStudy(content),
    // Encapsulated Document Series (C.24.1)
    Modality: 'DOC',
    SeriesInstanceUID: ids.seriesInstanceUid,
    SeriesNumber: ids.seriesNumber,
    SeriesDescription: lo(reportSeriesDescription(content, 'PDF')),
    // General Equipment (C.7.5.1)
    Manufacturer: 'RadiantAI',
    ...(content.node.institutionName ? { InstitutionName: lo(content.node.institutionName) } : {}),
    StationName: sh(content.node.aeTitle),
    SoftwareVersions: lo(content.node.softwareVersion),
    // SC Equipment (C.8.6.1): made on a workstation, not digitized from anything
    ConversionType: 'WSD',
    // Encapsulated Document (C.24.2)
    InstanceNumber: ids.instanceNumber,
    ContentDate: when.da,
    ContentTime: when.tm,
    AcquisitionDateTime: when.dt,
    // The identification and the draft banner are drawn into the pages.
    BurnedInAnnotation: 'YES',
    DocumentTitle: st(documentTitle(content)),
    ConceptNameCodeSequence: [{ CodeValue: '18748-4', CodingSchemeDesignator: 'LN', CodeMeaning: 'Diagnostic imaging report' }],
    VerificationFlag: signed ? 'VERIFIED' : 'UNVERIFIED',
    MIMETypeOfEncapsulatedDocument: 'application/pdf',
    EncapsulatedDocument: value.buffer,
    EncapsulatedDocumentLength: pdf.length,
  };
  setCharacterSet(ds, content.study.specificCharacterSet);
  try {
    return writePart10(ds);
  } catch (err) {
    throw new PdfReportError(`report ${content.reportId}: writing the Encapsulated PDF failed: ${(err as Error).message}`, { cause: err });
  }
}
