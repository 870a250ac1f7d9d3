/**
 * What a report says, in one shape shared by the DICOM-SR writer, the PDF renderer and the JSON
 * export: built from an analysis (the AI draft) and the radiologist's edits, signature or
 * amendment. Builders take only this (plus UIDs), never the database.
 */

export type ReportState = 'draft' | 'preliminary' | 'final' | 'amended';

/** An image the report refers to (the image library, a finding's evidence). */
export interface ImageRef {
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  /** 1-based; only for multi-frame instances. */
  frameNumber?: number;
  /** Rows/Columns of the referenced image, for coordinates. */
  rows?: number;
  columns?: number;
}

/** A region on one image, in that image's pixel coordinates (column, row; PS3.3 SCOORD). */
export interface ImageRegion {
  image: ImageRef;
  /** Corners of an axis-aligned box: [x0, y0, x1, y1], pixel column/row, 0 at the top-left corner. */
  box: [number, number, number, number];
  /** The box's corners in the image's Frame of Reference (mm), when its plane is known: the SR's SCOORD3D. */
  patient?: { frameOfReferenceUid: string; corners: Array<[number, number, number]> };
}

export interface ReportFinding {
  /** 1-based, as shown to readers. */
  number: number;
  /** Stable across versions of a report: the TrackingUniqueIdentifier of its measurement group. */
  trackingUid: string;
  description: string;
  anatomicalLocation: string | null;
  laterality: 'left' | 'right' | 'bilateral' | 'midline' | 'not_applicable' | null;
  category: 'normal' | 'abnormal' | 'incidental' | 'artifact' | 'limitation' | null;
  severity: 'normal' | 'mild' | 'moderate' | 'severe' | 'indeterminate' | null;
  /** The model's confidence, 0–1; null once a radiologist wrote the finding. */
  confidence: number | null;
  images: ImageRef[];
  region: ImageRegion | null;
  recommendation: string | null;
  /** What the safety gate flagged in the model's words of this finding (absent: none, or the radiologist's words). */
  safetyFlags?: ReportSafetyFlag[];
  /** Who wrote what it says now (absent: the model). */
  author?: 'ai' | 'radiologist';
  /** The radiologist's call on a model's finding (rejected ones are not in a report's content). */
  decision?: 'accepted' | 'edited';
}

/** One safety-gate hit shown with the text it concerns (src/medgemma/safety-gate.ts). */
export interface ReportSafetyFlag {
  rule: string;
  /** The words as the model wrote them ("[redacted …]" for an echoed identifier). */
  phrase: string;
}

export interface ReportMeasurement {
  /** The finding it belongs to (its number), when known. */
  findingNumber: number | null;
  quantity: string;
  value: number;
  /** UCUM, e.g. "mm", "cm2", "[hnsf'U]". */
  unit: string;
}

export interface ReportPatient {
  /** DICOM PN as stored (may hold non-ASCII, ideographic or hostile text: always escape). */
  name: string | null;
  id: string;
  issuer: string | null;
  birthDate: string | null;
  sex: string | null;
}

export interface ReportStudy {
  studyInstanceUid: string;
  accessionNumber: string | null;
  studyDate: string | null;
  studyTime: string | null;
  studyId: string | null;
  studyDescription: string | null;
  referringPhysicianName: string | null;
  /** Specific Character Set of the source study (copied so names keep their encoding). */
  specificCharacterSet: string | null;
}

export interface ReportAlgorithm {
  /** Model file name, e.g. "medgemma-4b-it-Q4_K_M.gguf". */
  name: string;
  /** Release of RadiantAI that ran it. */
  version: string;
  sha256: string | null;
  quantization: string | null;
  backend: string | null;
  promptTemplate: string | null;
  /** Device Observer UID of the algorithm (stable per model SHA-256). */
  deviceUid: string;
  /**
   * Whether the model's SHA-256 is trusted (src/medgemma/known-models.ts). False: the SR's
   * algorithm name/version and the PDF's banner say "unvalidated model".
   */
  validated: boolean;
  /** Why (validated or not), as the model identity says. */
  validation: string;
  /** Provenance digests as "name=value" lines (TID 4019 Algorithm Parameters). */
  provenance?: string[];
}

export interface ReportSigner {
  /** PN of the radiologist, credentials as the suffix ("Doe^Jane^^^MD"). */
  name: string;
  /** As a reader sees it: "Jane Doe, MD" (absent: the PN shown as it is). */
  display?: string;
  username: string;
  organization: string;
  /** ISO 8601. */
  at: string;
}

export interface ReportContent {
  reportId: number;
  version: number;
  state: ReportState;
  patient: ReportPatient;
  study: ReportStudy;
  /** Procedure reported, e.g. "CT chest". */
  procedure: string;
  modality: string;
  /** Body Part Examined of the analysed series (CHEST, HEAD…): with the modality, the procedure's code. */
  bodyPart?: string | null;
  clinicalIndication: string | null;
  technique: string;
  findings: ReportFinding[];
  measurements: ReportMeasurement[];
  impression: string;
  comparison: string | null;
  limitations: string | null;
  /** Safety flags on the impression (while it is the model's) and on the answer as a whole. */
  safetyFlags?: Array<ReportSafetyFlag & { target: 'impression' | 'answer' }>;
  /** Every image the analysis looked at. */
  imageLibrary: ImageRef[];
  algorithm: ReportAlgorithm;
  /** This node, for Contributing Equipment and the PDF footer. */
  node: { aeTitle: string; institutionName: string | null; softwareVersion: string; manufacturer: string };
  /** Set once signed (final, amended). */
  signer: ReportSigner | null;
  amendmentReason: string | null;
  /** Shown in the PDF and written into the SR. */
  disclaimer: string;
  /** The previous DICOM objects of this report (Predecessor Documents Sequence). */
  predecessors: ImageRef[];
  /** ISO 8601: when this version was made. */
  createdAt: string;
}

export const UNVALIDATED_MODEL_LABEL = 'UNVALIDATED MODEL — output of an unidentified model';

/** A signed report's note in place of the draft's disclaimer: the AI assisted, the radiologist signed. */
export const SIGNED_AI_NOTE =
  'AI-assisted report: drafted with an AI model (MedGemma), reviewed and signed by the radiologist named below. Findings marked AI-generated were accepted by the radiologist.';

export const AI_DISCLAIMER =
  'AI-generated draft for decision support (MedGemma). Not a diagnosis. It must be reviewed, edited and signed by a qualified radiologist before clinical use.';
