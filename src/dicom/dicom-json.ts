/**
 * The one DICOM JSON model (PS3.18 Annex F.2): a data set keyed by 8 upper-case hex tags, each
 * attribute its VR and a Value array, an InlineBinary (base64) or a BulkDataURI. Metadata, QIDO,
 * STOW responses, volumes and analysis all speak it.
 */

export interface DicomJsonAttribute {
  vr: string;
  Value?: unknown[];
  InlineBinary?: string;
  BulkDataURI?: string;
}

export type DicomJsonDataset = Record<string, DicomJsonAttribute>;

/**
 * An element as dcmjs's DicomMessage.readFile gives it, before it is shaped into DICOM JSON:
 * Value may be a single value or an array, and _rawValue keeps the undecoded form.
 */
export interface ParsedElement {
  vr?: string;
  Value?: unknown;
  /** The value as read, before dcmjs's formatting (kept for UI, among others). */
  _rawValue?: unknown;
}

/** A data set as dcmjs parsed it, keyed by 8 hex digits. */
export type ParsedDataset = Record<string, ParsedElement | undefined>;
