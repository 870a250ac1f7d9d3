/**
 * Coded concepts the SR uses, each checked against PS3.16 (DCM, Annex D), SNOMED CT (SCT),
 * LOINC (LN) or UCUM as cited by the templates: TID 1500/1501/1410/1600/1204/1001/1002/1004/
 * 4019/300, CID 218 (quantitative image features), CID 244 (laterality), CID 7005 (contributing equipment purposes), CID 29 (modality),
 * CID 100 (quantitative imaging procedures).
 */
import type { ReportFinding } from '../content.js';

export interface Code {
  value: string;
  scheme: string;
  meaning: string;
}

const dcm = (value: string, meaning: string): Code => ({ value, scheme: 'DCM', meaning });
const sct = (value: string, meaning: string): Code => ({ value, scheme: 'SCT', meaning });
const ln = (value: string, meaning: string): Code => ({ value, scheme: 'LN', meaning });

/**
 * The one concept without a standard code (no DCM, SCT or LOINC heading for a report's
 * limitations exists in PS3.16 CID 7001). A private coding scheme (PS3.16 8.2: "99" prefix),
 * declared in the Coding Scheme Identification Sequence.
 */
export const PRIVATE_SCHEME = {
  designator: '99RADIANT',
  name: 'RadiantAI local codes',
  responsibleOrganization: 'RadiantAI',
} as const;

export const CODES = {
  // TID 1500 root and sections
  imagingMeasurementReport: dcm('126000', 'Imaging Measurement Report'),
  /** The root of a report with no region to draw (see sr-builder's rootConcept). */
  diagnosticImagingReport: ln('18748-4', 'Diagnostic imaging report'),
  languageOfContent: dcm('121049', 'Language of Content Item and Descendants'),
  englishUs: { value: 'en-US', scheme: 'RFC5646', meaning: 'English (United States)' } as Code,
  procedureReported: dcm('121058', 'Procedure reported'),
  imageLibrary: dcm('111028', 'Image Library'),
  imageLibraryGroup: dcm('126200', 'Image Library Group'),
  modality: dcm('121139', 'Modality'),
  imagingMeasurements: dcm('126010', 'Imaging Measurements'),
  qualitativeEvaluations: { value: 'C0034375', scheme: 'UMLS', meaning: 'Qualitative Evaluations' } as Code,

  // TID 1002/1004 observer context
  observerType: dcm('121005', 'Observer Type'),
  person: dcm('121006', 'Person'),
  device: dcm('121007', 'Device'),
  personObserverName: dcm('121008', 'Person Observer Name'),
  personObserverOrganization: dcm('121009', "Person Observer's Organization Name"),
  deviceObserverUid: dcm('121012', 'Device Observer UID'),
  deviceObserverName: dcm('121013', 'Device Observer Name'),
  deviceObserverManufacturer: dcm('121014', 'Device Observer Manufacturer'),
  deviceObserverModelName: dcm('121015', 'Device Observer Model Name'),
  deviceObserverSerialNumber: dcm('121016', 'Device Observer Serial Number'),

  // TID 1501 / TID 1410 measurement groups
  measurementGroup: dcm('125007', 'Measurement Group'),
  trackingIdentifier: dcm('112039', 'Tracking Identifier'),
  trackingUniqueIdentifier: dcm('112040', 'Tracking Unique Identifier'),
  finding: dcm('121071', 'Finding'),
  findingSite: sct('363698007', 'Finding Site'),
  laterality: sct('272741003', 'Laterality'),
  severity: sct('246112005', 'Severity'),
  certaintyOfFinding: dcm('111012', 'Certainty of Finding'),
  recommendation: dcm('121075', 'Recommendation'),
  /** TID 1501 row "Source": an image the group was derived from. */
  source: sct('260753009', 'Source'),
  /** TID 1410 "Image Region" SCOORD, and its SELECTED FROM image. */
  imageRegion: dcm('111030', 'Image Region'),
  originalSource: dcm('111040', 'Original Source'),

  // TID 4019 algorithm identification
  algorithmName: dcm('111001', 'Algorithm Name'),
  algorithmVersion: dcm('111003', 'Algorithm Version'),
  algorithmParameters: dcm('111002', 'Algorithm Parameters'),

  // Narrative evaluations
  impression: dcm('121073', 'Impression'),
  comparison: ln('18834-2', 'Radiology Comparison Study'),
  procedureDescription: dcm('121065', 'Procedure Description'),
  comment: dcm('121106', 'Comment'),
  limitations: { value: 'LIMITATIONS', scheme: PRIVATE_SCHEME.designator, meaning: 'Limitations' } as Code,
  amendmentReason: { value: 'AMENDMENT', scheme: PRIVATE_SCHEME.designator, meaning: 'Reason for amendment' } as Code,
  /**
   * A hit of this node's AI safety gate on the model's words (rule and phrase): a node-specific
   * concept with no PS3.16 code, hence the private scheme.
   */
  safetyFlag: { value: 'SAFETYFLAG', scheme: PRIVATE_SCHEME.designator, meaning: 'AI safety flag' } as Code,

  // Contributing Equipment purpose (CID 7005)
  processingEquipment: dcm('109102', 'Processing Equipment'),

  /**
   * The unit of a 0–1 confidence: UCUM "1" (dimensionless), as PS3.16 CID 7181 codes it
   * ("1", UCUM, "no units"); Certainty of Finding carries the model's confidence on that scale.
   */
  noUnits: { value: '1', scheme: 'UCUM', meaning: 'no units' } as Code,
} as const;

const LATERALITY: Record<NonNullable<ReportFinding['laterality']>, Code | null> = {
  left: sct('7771000', 'Left'),
  right: sct('24028007', 'Right'),
  bilateral: sct('51440002', 'Right and left'),
  midline: sct('260528009', 'Median'),
  not_applicable: null,
};

export function lateralityCode(l: ReportFinding['laterality']): Code | null {
  return l ? LATERALITY[l] : null;
}

const SEVERITY: Record<NonNullable<ReportFinding['severity']>, Code> = {
  normal: sct('17621005', 'Normal'),
  mild: sct('255604002', 'Mild'),
  moderate: sct('6736007', 'Moderate'),
  severe: sct('24484000', 'Severe'),
  indeterminate: sct('82334004', 'Indeterminate'),
};

export function severityCode(s: ReportFinding['severity']): Code | null {
  return s ? SEVERITY[s] : null;
}

/** CID 29 acquisition modalities (DCM codes are the modality's defined term). */
const MODALITY: Record<string, string> = {
  CT: 'Computed Tomography',
  MR: 'Magnetic Resonance',
  CR: 'Computed Radiography',
  DX: 'Digital Radiography',
  MG: 'Mammography',
  NM: 'Nuclear Medicine',
  PT: 'Positron emission tomography',
  US: 'Ultrasound',
  XA: 'X-Ray Angiography',
};

export function modalityCode(modality: string): Code | null {
  const m = MODALITY[modality.toUpperCase()];
  return m ? dcm(modality.toUpperCase(), m) : null;
}

/**
 * Procedures whose LOINC/RSNA Radiology Playbook code is known from modality and body part
 * (Body Part Examined defined terms, PS3.16 Annex L): modality → body part → code.
 */
const PROCEDURES: Record<string, Record<string, Code>> = {
  CT: {
    CHEST: ln('24627-2', 'CT Chest'),
    LUNG: ln('24627-2', 'CT Chest'),
    THORAX: ln('24627-2', 'CT Chest'),
    HEAD: ln('24725-4', 'CT Head'),
    BRAIN: ln('24725-4', 'CT Head'),
  },
  MR: {
    HEAD: ln('24590-2', 'MR Brain'),
    BRAIN: ln('24590-2', 'MR Brain'),
  },
};

/**
 * Procedure reported (TID 1500 row 4, CID 100): the study's procedure by modality and body part
 * where the table knows it, else the "unspecified body region" LOINC code of the modality, else
 * a generic imaging procedure; the free-text procedure goes into Procedure Description beside it.
 */
export function procedureCode(modality: string, bodyPart?: string | null): Code {
  const known = PROCEDURES[modality.toUpperCase()]?.[(bodyPart ?? '').trim().toUpperCase()];
  if (known) return known;
  switch (modality.toUpperCase()) {
    case 'CT':
      return ln('25045-6', 'CT unspecified body region');
    case 'MR':
      return ln('25056-3', 'MRI unspecified body region');
    case 'NM':
      return ln('49118-3', 'NM unspecified body region');
    case 'PT':
      return ln('44136-0', 'PET unspecified body region');
    default:
      return sct('363679005', 'Imaging procedure');
  }
}

/**
 * The concept name of a measurement (TID 300 row 1): the quantity matched against the common
 * SNOMED CT measurement concepts; a quantity that matches none keeps its own words under the
 * private scheme rather than being forced onto a wrong concept.
 */
export function quantityCode(quantity: string): Code {
  const q = quantity.toLowerCase();
  // CID 218 (Quantitative Image Feature); the most specific words first.
  if (/long(est)?[ -]?axis/.test(q)) return sct('103339001', 'Long Axis');
  if (/short(est)?[ -]?axis/.test(q)) return sct('103340004', 'Short Axis');
  if (/major[ -]?axis/.test(q)) return sct('131187009', 'Major Axis');
  if (/minor[ -]?axis/.test(q)) return sct('131188004', 'Minor Axis');
  if (/diameter/.test(q)) return sct('81827009', 'Diameter');
  if (/radius/.test(q)) return sct('131190003', 'Radius');
  if (/circumference/.test(q)) return sct('74551000', 'Circumference');
  if (/perimeter/.test(q)) return sct('131191004', 'Perimeter');
  if (/volume/.test(q)) return sct('118565006', 'Volume');
  if (/area/.test(q)) return sct('42798000', 'Area');
  if (/width|thickness/.test(q)) return sct('103355008', 'Width');
  if (/depth/.test(q)) return sct('131197000', 'Depth');
  if (/height/.test(q)) return dcm('121207', 'Height');
  if (/distance/.test(q)) return dcm('121206', 'Distance');
  if (/length|size/.test(q)) return sct('410668003', 'Length');
  if (/attenuation|hounsfield|\bhu\b|density/.test(q)) return dcm('112031', 'Attenuation Coefficient');
  return { value: privateCodeValue(quantity), scheme: PRIVATE_SCHEME.designator, meaning: quantity };
}

/**
 * Free text from the model as a code: TID 1501/1419 make Finding and Finding Site CODE items
 * (extensible context groups), and viewers (OHIF) read them as codes. The words go into the
 * Code Meaning (LO: 64 characters; the caller keeps longer text as a comment).
 */
export function wordsCode(prefix: 'F' | 'S', words: string): Code {
  const meaning = [...words.trim()].slice(0, 64).join('');
  return { value: `${prefix}${privateCodeValue(words.trim()).slice(1)}`, scheme: PRIVATE_SCHEME.designator, meaning };
}

/** A private code value (SH, 16 characters) that is stable for the same words. */
function privateCodeValue(words: string): string {
  let h = 0x811c9dc5;
  for (const ch of words.toLowerCase()) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `Q${h.toString(16).toUpperCase().padStart(8, '0')}`;
}

/** Human names of the common UCUM units; any other unit's code is its own meaning. */
const UCUM_MEANING: Record<string, string> = {
  mm: 'millimeter',
  cm: 'centimeter',
  m: 'meter',
  mm2: 'square millimeter',
  cm2: 'square centimeter',
  mm3: 'cubic millimeter',
  cm3: 'cubic centimeter',
  ml: 'milliliter',
  mL: 'milliliter',
  "[hnsf'U]": 'Hounsfield unit',
  '%': 'Percent',
  '1': 'no units',
  deg: 'degree',
  s: 'second',
  g: 'gram',
};

export function ucumCode(unit: string): Code {
  return { value: unit, scheme: 'UCUM', meaning: UCUM_MEANING[unit] ?? unit };
}
