/**
 * The DICOM-SR writer: a report's content as a Comprehensive 3D SR (PS3.3 A.35.13) Part 10 file
 * in Explicit VR Little Endian, written with dcmjs. Pure: same content and ids, same bytes.
 */
import type { NaturalizedDataset } from 'dcmjs';
import type { ReportContent } from '../content.js';
import { RadiantError } from '../../errors.js';
import { CODES, PRIVATE_SCHEME } from './codes.js';
import { asTextReport, buildContentTree, drawsRegions, RADIANT_MANUFACTURER, referencedImages } from './content-tree.js';
import { codeItem } from './items.js';
import { hierarchicalReference } from './references.js';
import { isValidUid } from '../../dicom/uids.js';
import { da, dt, lo, pn, sh, tm } from '../../dicom/vr-values.js';
import { patientAndStudy, setCharacterSet } from '../dicom/source-modules.js';
import { writePart10 } from '../dicom/write-part10.js';
import { reportSeriesDescription, type ReportObjectKind } from '../series.js';

export const COMPREHENSIVE_3D_SR_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.88.34';

export interface SrIds {
  sopInstanceUid: string;
  seriesInstanceUid: string;
  seriesNumber: number;
  instanceNumber: number;
  contentDateTime: Date;
}

function checkInput(c: ReportContent, ids: SrIds): void {
  const uids: Array<[string, string]> = [
    ['sopInstanceUid', ids.sopInstanceUid],
    ['seriesInstanceUid', ids.seriesInstanceUid],
    ['studyInstanceUid', c.study.studyInstanceUid],
    ['algorithm.deviceUid', c.algorithm.deviceUid],
    ...c.findings.map((f): [string, string] => [`finding ${f.number} trackingUid`, f.trackingUid]),
    ...c.findings.flatMap(
      (f): Array<[string, string]> =>
        f.region?.patient ? [[`finding ${f.number} frameOfReferenceUid`, f.region.patient.frameOfReferenceUid]] : [],
    ),
    ...[...c.imageLibrary, ...c.predecessors, ...c.findings.flatMap((f) => [...f.images, ...(f.region ? [f.region.image] : [])])].flatMap(
      (r): Array<[string, string]> => [
        ['sopClassUid', r.sopClassUid],
        ['sopInstanceUid', r.sopInstanceUid],
        ['seriesInstanceUid', r.seriesInstanceUid],
      ],
    ),
  ];
  for (const [what, uid] of uids) {
    if (!isValidUid(uid)) throw new RadiantError('invalid-input', `SR: ${what} is not a valid UID: ${JSON.stringify(uid)}`);
  }
  if (Number.isNaN(ids.contentDateTime.getTime())) throw new RadiantError('invalid-input', 'SR: contentDateTime is not a valid date');
  if ((c.state === 'final' || c.state === 'amended') && !c.signer) {
    throw new RadiantError('invalid-input', `SR: a ${c.state} report must carry its signer`);
  }
  if (c.signer && Number.isNaN(new Date(c.signer.at).getTime())) {
    throw new RadiantError('invalid-input', `SR: signer.at is not a date: ${JSON.stringify(c.signer.at)}`);
  }
}

function documentGeneral(c: ReportContent, ids: SrIds): NaturalizedDataset {
  const signed = c.signer !== null;
  const complete = c.state === 'final' || c.state === 'amended';
  const ds: NaturalizedDataset = {
    InstanceNumber: ids.instanceNumber,
    ContentDate: da(ids.contentDateTime),
    ContentTime: tm(ids.contentDateTime),
    PreliminaryFlag: complete ? 'FINAL' : 'PRELIMINARY',
    CompletionFlag: complete ? 'COMPLETE' : 'PARTIAL',
    VerificationFlag: signed ? 'VERIFIED' : 'UNVERIFIED',
    PerformedProcedureCodeSequence: [],
  };
  if (c.signer) {
    ds.VerifyingObserverSequence = [
      {
        VerifyingObserverName: pn(c.signer.name),
        VerifyingObserverIdentificationCodeSequence: [],
        VerifyingOrganization: lo(c.signer.organization),
        VerificationDateTime: dt(new Date(c.signer.at)),
      },
    ];
  }
  const predecessors = hierarchicalReference(c.study.studyInstanceUid, c.predecessors);
  if (predecessors.length > 0) ds.PredecessorDocumentsSequence = predecessors;
  const evidence = hierarchicalReference(c.study.studyInstanceUid, referencedImages(c));
  if (evidence.length > 0) ds.CurrentRequestedProcedureEvidenceSequence = evidence;
  return ds;
}

/** Contributing Equipment (PS3.3 C.12.1): this node, and the model that drafted the content. */
function contributingEquipment(c: ReportContent, ids: SrIds): NaturalizedDataset[] {
  const purpose = [codeItem(CODES.processingEquipment)];
  const when = dt(ids.contentDateTime);
  const node: NaturalizedDataset = {
    PurposeOfReferenceCodeSequence: purpose,
    Manufacturer: lo(c.node.manufacturer),
    ManufacturerModelName: lo('RadiantAI node'),
    StationName: sh(c.node.aeTitle),
    SoftwareVersions: lo(c.node.softwareVersion),
    ContributionDateTime: when,
    ContributionDescription: lo('Report assembly and DICOM-SR encoding'),
  };
  if (c.node.institutionName) node.InstitutionName = lo(c.node.institutionName);
  const a = c.algorithm;
  const model: NaturalizedDataset = {
    PurposeOfReferenceCodeSequence: purpose,
    Manufacturer: RADIANT_MANUFACTURER,
    ManufacturerModelName: lo(a.name),
    SoftwareVersions: lo(a.version),
    ContributionDateTime: when,
    ContributionDescription: lo(`AI analysis (MedGemma)${a.quantization ? `, ${a.quantization}` : ''}${a.backend ? `, ${a.backend}` : ''}`),
  };
  if (a.sha256) model.DeviceSerialNumber = lo(a.sha256);
  return [model, node];
}

/**
 * The root: OHIF 3 shows a TID 1500 Imaging Measurement Report as its regions drawn on their
 * images and nothing else, so one with no region to draw opens as an empty black viewport; any
 * other root it shows as its content tree, as text. A report with a region is therefore a TID
 * 1500 report (the boxes on the slices); one without keeps the same tree under a Diagnostic
 * imaging report root (LOINC 18748-4), claiming no template, and reads as text.
 */
function rootConcept(c: ReportContent): NaturalizedDataset {
  if (drawsRegions(c))
    return {
      ConceptNameCodeSequence: [codeItem(CODES.imagingMeasurementReport)],
      ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: '1500' }],
    };
  return { ConceptNameCodeSequence: [codeItem(CODES.diagnosticImagingReport)] };
}

/** The dataset, before the character set is decided. */
function dataset(c: ReportContent, ids: SrIds, kind: Extract<ReportObjectKind, 'SR' | 'TEXT'>): NaturalizedDataset {
  const now = ids.contentDateTime;
  return {
    SOPClassUID: COMPREHENSIVE_3D_SR_SOP_CLASS,
    SOPInstanceUID: ids.sopInstanceUid,
    InstanceCreationDate: da(now),
    InstanceCreationTime: tm(now),
    TimezoneOffsetFromUTC: '+0000',
    ...patientAndStudy(c),
    // SR Document Series
    Modality: 'SR',
    SeriesInstanceUID: ids.seriesInstanceUid,
    SeriesNumber: ids.seriesNumber,
    SeriesDate: da(now),
    SeriesTime: tm(now),
    SeriesDescription: lo(reportSeriesDescription(c, kind)),
    ReferencedPerformedProcedureStepSequence: [],
    // General Equipment
    Manufacturer: RADIANT_MANUFACTURER,
    ...(c.node.institutionName ? { InstitutionName: lo(c.node.institutionName) } : {}),
    StationName: sh(c.node.aeTitle),
    ManufacturerModelName: lo('RadiantAI node'),
    SoftwareVersions: lo(c.node.softwareVersion),
    ContributingEquipmentSequence: contributingEquipment(c, ids),
    ...documentGeneral(c, ids),
    // SR Document Content: the root container
    ValueType: 'CONTAINER',
    ...rootConcept(c),
    ContinuityOfContent: 'SEPARATE',
    ContentSequence: buildContentTree(c),
  };
}

/** Whether any code in the tree is from the given coding scheme (it must then be declared). */
function usesScheme(value: unknown, designator: string): boolean {
  if (Array.isArray(value)) return value.some((v) => usesScheme(v, designator));
  if (!value || typeof value !== 'object' || value instanceof ArrayBuffer) return false;
  const item = value as Record<string, unknown>;
  if (item.CodingSchemeDesignator === designator) return true;
  return Object.values(item).some((v) => usesScheme(v, designator));
}

/**
 * Builds the SR for one version of a report. Throws RadiantError('invalid-input') for content
 * that cannot make a valid object (a malformed UID, a final report without its signer).
 */
export function buildStructuredReport(content: ReportContent, ids: SrIds): Buffer {
  return build(content, ids, 'SR');
}

/**
 * The text rendition of a version whose SR is a TID 1500 report (drawsRegions): the same words,
 * findings and impression under a Diagnostic imaging report root, regions as image references,
 * in a series of its own (OHIF shows one SR per series). Viewers that draw only a TID 1500
 * report's regions show this one as text.
 */
export function buildTextRenditionSr(content: ReportContent, ids: SrIds): Buffer {
  return build(asTextReport(content), ids, 'TEXT');
}

function build(content: ReportContent, ids: SrIds, kind: Extract<ReportObjectKind, 'SR' | 'TEXT'>): Buffer {
  checkInput(content, ids);
  const ds = dataset(content, ids, kind);
  if (usesScheme(ds.ContentSequence, PRIVATE_SCHEME.designator)) {
    ds.CodingSchemeIdentificationSequence = [
      {
        CodingSchemeDesignator: PRIVATE_SCHEME.designator,
        CodingSchemeName: PRIVATE_SCHEME.name,
        CodingSchemeResponsibleOrganization: PRIVATE_SCHEME.responsibleOrganization,
      },
    ];
  }
  setCharacterSet(ds, content.study.specificCharacterSet);
  return writePart10(ds);
}
