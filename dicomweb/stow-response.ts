import type { DicomJsonAttribute, DicomJsonDataset } from '../src/dicom/dicom-json.js';
import { tagNumber, tags } from '../src/dicom/dictionary.js';
import { fileMeta, metaText } from '../src/dicom/structure.js';
import { DimseStatus } from '../src/dicom/dimse-status.js';
import { RadiantError } from '../src/errors.js';
import { isValidUid } from '../src/dicom/uids.js';

/**
 * The Store Instances Response Module (PS3.18 Annex I, Table I.1-1) in the DICOM JSON model
 * (PS3.18 Annex F), and the Failure / Warning Reason codes STOW-RS answers with.
 *
 * Failure Reason (0008,1197), PS3.18 Table I.2-2: A7xx out of resources, A9xx data set does not
 * match SOP Class, Cxxx cannot understand, C122 Referenced Transfer Syntax not supported, 0110
 * processing failure, 0122 Referenced SOP Class not supported; "additional codes may be used ...
 * the single most appropriate code shall be used". The standard has no code for "instance of
 * another study than the one in the request path" (it names that case only as a reason for
 * 409, Table 10.5.3-1), so that one is implementation-specific: 0xC409, the code dcm4chee-arc
 * uses for the same case (in the Cxxx error range, so a client that only knows the ranges still
 * reads it as an error). 0xC122 is NOT used for it: the standard gives C122 to an unsupported
 * transfer syntax.
 *
 * Warning Reason (0008,1196), PS3.18 Table I.2-1: B000 coercion, B006 elements discarded, B007
 * data set does not match SOP Class. The node never changes what it stores; it warns with B007
 * when it could index an instance only partly (text in a character set it cannot decode), and
 * with the implementation-specific 0xB00E (as Microsoft's DICOM service) when DUPLICATE_POLICY
 * =ignore kept an already stored instance instead of the one sent.
 */
export const FailureReason = {
  /** A7xx: out of resources (storage or index unavailable, instance over MAX_INSTANCE_BYTES). */
  OutOfResources: DimseStatus.OutOfResources, // 0xA700
  /** A9xx: data set does not match SOP Class (required UIDs missing or invalid, meta ≠ data set). */
  DataSetDoesNotMatchSopClass: DimseStatus.DataSetDoesNotMatchSopClass, // 0xA900
  /** Cxxx: cannot understand (not a DICOM Part 10 file, corrupt). */
  CannotUnderstand: DimseStatus.CannotUnderstand, // 0xC000
  /** C122: Referenced Transfer Syntax not supported. */
  TransferSyntaxNotSupported: DimseStatus.TransferSyntaxNotSupported,
  /** 0110: processing failure (anything unexpected). */
  ProcessingFailure: DimseStatus.ProcessingFailure,
  /** 0122: Referenced SOP Class not supported. */
  SopClassNotSupported: DimseStatus.SopClassNotSupported,
  /** 0111 (PS3.7 C.5.4 Duplicate SOP Instance): DUPLICATE_POLICY=reject. Implementation-specific for STOW. */
  DuplicateSopInstance: DimseStatus.DuplicateSopInstance,
  /** Implementation-specific: the instance belongs to another study than POST /studies/{study}. */
  StudyInstanceUidMismatch: 0xc409,
} as const;

export const WarningReason = {
  DataSetDoesNotMatchSopClass: DimseStatus.WarningDataSetDoesNotMatchSopClass,
  /** Implementation-specific: an identical SOP Instance UID was already stored and was kept. */
  AlreadyStored: 0xb00e,
} as const;

export function failureReasonOf(err: unknown): number {
  if (!(err instanceof RadiantError)) return FailureReason.ProcessingFailure;
  switch (err.kind) {
    case 'unparseable':
      return FailureReason.CannotUnderstand;
    case 'invalid-input':
      return FailureReason.DataSetDoesNotMatchSopClass;
    case 'mismatch':
      return err.reason === 'study-mismatch' ? FailureReason.StudyInstanceUidMismatch : FailureReason.DataSetDoesNotMatchSopClass;
    case 'unsupported':
      return err.reason === 'transfer-syntax' ? FailureReason.TransferSyntaxNotSupported : FailureReason.SopClassNotSupported;
    case 'duplicate':
      return FailureReason.DuplicateSopInstance;
    case 'too-large':
    case 'out-of-resources':
      return FailureReason.OutOfResources;
    default:
      return FailureReason.ProcessingFailure;
  }
}

export interface StoredRef {
  sopClassUid: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  warningReason?: number;
}

export interface FailedRef {
  sopClassUid?: string;
  sopInstanceUid?: string;
  failureReason: number;
  /** For logs and the audit trail only; not part of the DICOM response. */
  message: string;
}

const T = tags(
  'RetrieveURL',
  'FailedSOPSequence',
  'ReferencedSOPSequence',
  'ReferencedSOPClassUID',
  'ReferencedSOPInstanceUID',
  'FailureReason',
  'WarningReason',
);

/** Element numbers in the File Meta group. */
const MEDIA_SOP_CLASS = tagNumber('MediaStorageSOPClassUID') & 0xffff;
const MEDIA_SOP_INSTANCE = tagNumber('MediaStorageSOPInstanceUID') & 0xffff;

type JsonAttr = DicomJsonAttribute;
type JsonDataset = DicomJsonDataset;

const ui = (v: string): JsonAttr => ({ vr: 'UI', Value: [v] });
const ur = (v: string | undefined): JsonAttr => (v ? { vr: 'UR', Value: [v] } : { vr: 'UR' });
const us = (v: number): JsonAttr => ({ vr: 'US', Value: [v] });

export function studyUrl(base: string, study: string): string {
  return `${base}/dicom-web/studies/${study}`;
}

/**
 * The response data set. Retrieve URL (0008,1190) of the study is type 2: empty when the stored
 * instances belong to several studies (or none was stored) and the request named none.
 */
export function storeResponse(opts: { base: string; requestStudy?: string; stored: StoredRef[]; failed: FailedRef[] }): JsonDataset {
  const studies = new Set(opts.stored.map((s) => s.studyInstanceUid));
  const study = opts.requestStudy ?? (studies.size === 1 ? [...studies][0] : undefined);
  const out: JsonDataset = { [T.RetrieveURL]: ur(study && studyUrl(opts.base, study)) };
  if (opts.failed.length) {
    out[T.FailedSOPSequence] = {
      vr: 'SQ',
      Value: opts.failed.map((f) => {
        const item: JsonDataset = {};
        if (f.sopClassUid) item[T.ReferencedSOPClassUID] = ui(f.sopClassUid);
        if (f.sopInstanceUid) item[T.ReferencedSOPInstanceUID] = ui(f.sopInstanceUid);
        item[T.FailureReason] = us(f.failureReason);
        return item;
      }),
    };
  }
  if (opts.stored.length) {
    out[T.ReferencedSOPSequence] = {
      vr: 'SQ',
      Value: opts.stored.map((s) => {
        const item: JsonDataset = {
          [T.ReferencedSOPClassUID]: ui(s.sopClassUid),
          [T.ReferencedSOPInstanceUID]: ui(s.sopInstanceUid),
          [T.RetrieveURL]: ur(`${studyUrl(opts.base, s.studyInstanceUid)}/series/${s.seriesInstanceUid}/instances/${s.sopInstanceUid}`),
        };
        if (s.warningReason !== undefined) item[T.WarningReason] = us(s.warningReason);
        return item;
      }),
    };
  }
  return out;
}

/**
 * (0002,0002) Media Storage SOP Class UID and (0002,0003) Media Storage SOP Instance UID from the
 * start of a Part 10 file (the File Meta group is always Explicit VR Little Endian), so that a
 * failed instance can still be named in the response. Anything odd: nothing.
 */
export function metaUids(head: Buffer): { sopClassUid?: string; sopInstanceUid?: string } {
  const out: { sopClassUid?: string; sopInstanceUid?: string } = {};
  if (head.length < 132 || head.toString('latin1', 128, 132) !== 'DICM') return out;
  for (const e of fileMeta(head).elements) {
    if (e.length === 0xffffffff || e.valueOffset + e.length > head.length) break;
    if (e.vr === 'UI' && (e.element === MEDIA_SOP_CLASS || e.element === MEDIA_SOP_INSTANCE)) {
      const uid = metaText(head, e);
      if (isValidUid(uid)) out[e.element === MEDIA_SOP_CLASS ? 'sopClassUid' : 'sopInstanceUid'] = uid;
    }
  }
  return out;
}
