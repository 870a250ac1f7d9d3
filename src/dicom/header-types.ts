import type { SequenceItems } from './indexed-sequences.js';
import type { PixelDataExtent } from './structure.js';

/**
 * What the node reads from an instance's header: the Part 10 meta and the attributes the index
 * matches on. Produced by the parser worker (a structured-clone-safe plain object).
 */
export interface DicomHeader {
  /** UIDs (meta and data set) are as encoded, only trailing NUL/space padding removed: never normalised. */
  transferSyntaxUid: string;
  mediaStorageSopClassUid?: string;
  mediaStorageSopInstanceUid?: string;
  sopClassUid?: string;
  sopInstanceUid?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  specificCharacterSet?: string;
  patientName?: string;
  patientId?: string;
  issuerOfPatientId?: string;
  patientBirthDate?: string;
  patientSex?: string;
  studyDate?: string;
  studyTime?: string;
  accessionNumber?: string;
  referringPhysicianName?: string;
  studyDescription?: string;
  studyId?: string;
  timezoneOffsetFromUtc?: string;
  modality?: string;
  seriesNumber?: number;
  seriesDescription?: string;
  bodyPartExamined?: string;
  performedProcedureStepStartDate?: string;
  performedProcedureStepStartTime?: string;
  instanceNumber?: number;
  rows?: number;
  columns?: number;
  numberOfFrames?: number;
  samplesPerPixel?: number;
  bitsAllocated?: number;
  photometricInterpretation?: string;
  /** Extent of the top-level pixel data element, from the structural walk (structure.ts). */
  pixelData?: PixelDataExtent;
  /** Why `pixelData` could not be measured (a deflated data set beyond the inflate limit). */
  pixelDataUnchecked?: string;
  /** Items of the sequences the index keeps (indexed-sequences.ts). */
  sequences?: SequenceItems;
  hasPixelData: boolean;
  /** Problems that did not stop parsing (e.g. an unsupported character set). */
  warnings: string[];
}

export type ParseOutcome = { ok: true; header: DicomHeader } | { ok: false; error: string; kind: 'unparseable' | 'invalid-input' };
