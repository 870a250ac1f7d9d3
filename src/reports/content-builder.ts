import type { Db } from '../db/connection.js';
import type { Analysis } from '../analysis/analyses.js';
import { instancesByUid } from '../catalog/catalog.js';
import { studyFacts } from '../catalog/studies.js';
import { uidFromNames } from '../dicom/new-uid.js';
import { RadiantError } from '../errors.js';
import {
  AI_DISCLAIMER,
  type ImageRef,
  type ImageRegion,
  type ReportContent,
  type ReportFinding,
  type ReportSigner,
  type ReportState,
} from './content.js';
import type { ReportBody } from './body.js';

/** What builds a ReportContent besides the body: the report row's facts and this node. */
export interface ContentFacts {
  reportId: number;
  version: number;
  state: ReportState;
  includeDisclaimer: boolean;
  signer: ReportSigner | null;
  amendmentReason: string | null;
  predecessors: ImageRef[];
  createdAt: string;
  node: ReportContent['node'];
}

export class ReportContentError extends RadiantError {
  constructor(message: string) {
    super('internal', message);
    this.name = 'ReportContentError';
  }
}

export async function buildContent(db: Db, analysis: Analysis, body: ReportBody, f: ContentFacts): Promise<ReportContent> {
  const s = await studyFacts(db, analysis.studyInstanceUid);
  if (!s) throw new ReportContentError(`study ${analysis.studyInstanceUid} is no longer in the index`);

  // The analysed images as the index knows them (SOP class, matrix) for the image library.
  const rows = await instancesByUid(
    db,
    analysis.images.map((i) => i.sopInstanceUid),
  );
  const refOf = (index: number): ImageRef | undefined => {
    const im = analysis.images[index];
    const r = im && rows.get(im.sopInstanceUid);
    // Deleted since, or a prior study's image (a comparison): not referenced by this study's objects.
    if (!im || !r || (im.studyInstanceUid && im.studyInstanceUid !== analysis.studyInstanceUid)) return undefined;
    const multi = (r.numberOfFrames ?? 1) > 1;
    return {
      sopClassUid: r.sopClassUid,
      sopInstanceUid: im.sopInstanceUid,
      seriesInstanceUid: im.seriesInstanceUid,
      ...(multi ? { frameNumber: im.frameNumber } : {}),
      ...(r.rows ? { rows: Number(r.rows) } : {}),
      ...(r.columns ? { columns: Number(r.columns) } : {}),
    };
  };
  const imageLibrary = analysis.images.map((_, i) => refOf(i)).filter((x): x is ImageRef => !!x);

  const findings = body.findings.map((bf): ReportFinding => {
    const images = bf.imageIndices.map(refOf).filter((x): x is ImageRef => !!x);
    return {
      number: bf.number,
      trackingUid: bf.trackingUid,
      description: bf.description,
      anatomicalLocation: bf.anatomicalLocation,
      laterality: bf.laterality,
      category: bf.category,
      severity: bf.severity,
      confidence: bf.author === 'ai' ? bf.confidence : null,
      images,
      region: regionOf(analysis, bf.region, refOf),
      recommendation: bf.recommendation,
    };
  });

  const modality = (s.modalities_in_study ?? '').split('\\').find((m) => m && !['SR', 'DOC', 'KO', 'PR'].includes(m)) ?? 'OT';
  const model = analysis.model;
  return {
    reportId: f.reportId,
    version: f.version,
    state: f.state,
    patient: {
      name: s.patient_name,
      id: s.patient_id,
      issuer: s.issuer_of_patient_id || null,
      birthDate: s.patient_birth_date,
      sex: s.patient_sex,
    },
    study: {
      studyInstanceUid: s.study_instance_uid,
      accessionNumber: s.accession_number,
      studyDate: s.study_date,
      studyTime: s.study_time,
      studyId: s.study_id,
      studyDescription: s.study_description,
      referringPhysicianName: s.referring_physician_name,
      // Names come out of the index as Unicode: the report objects are written in UTF-8.
      specificCharacterSet: 'ISO_IR 192',
    },
    procedure: s.study_description || `${modality} examination`,
    modality,
    clinicalIndication: body.clinicalIndication,
    technique: body.technique,
    findings,
    measurements: body.measurements.map((m) => ({ findingNumber: m.findingNumber, quantity: m.quantity, value: m.value, unit: m.unit })),
    impression: body.impression,
    comparison: body.comparison,
    limitations: body.limitations,
    imageLibrary,
    algorithm: {
      name: model?.name ?? 'unknown model',
      version: f.node.softwareVersion,
      sha256: model?.sha256 ?? null,
      quantization: model?.quantization ?? null,
      backend: model?.backend ?? null,
      promptTemplate: analysis.prompt ? `${analysis.prompt.templateId} v${analysis.prompt.templateVersion}` : null,
      deviceUid: uidFromNames('radiant-ai-model', model?.sha256 ?? model?.name ?? 'unknown'),
    },
    node: f.node,
    signer: f.signer,
    amendmentReason: f.amendmentReason,
    disclaimer: f.includeDisclaimer ? AI_DISCLAIMER : 'AI-assisted report.',
    predecessors: f.predecessors,
    createdAt: f.createdAt,
  };
}

/** The model's box (prepared-image pixels) mapped back onto the source image's pixels. */
function regionOf(
  analysis: Analysis,
  r: ReportBody['findings'][number]['region'],
  refOf: (i: number) => ImageRef | undefined,
): ImageRegion | null {
  if (!r) return null;
  const im = analysis.images[r.imageIndex];
  const ref = refOf(r.imageIndex);
  const p = im?.placement;
  if (!im || !ref || !p || p.width <= 0 || p.height <= 0) return null;
  const x = (v: number) => Math.min(p.columns, Math.max(0, ((v - p.left) * p.columns) / p.width));
  const y = (v: number) => Math.min(p.rows, Math.max(0, ((v - p.top) * p.rows) / p.height));
  const box: [number, number, number, number] = [x(r.box[0]), y(r.box[1]), x(r.box[2]), y(r.box[3])];
  // A box wholly in the padding says nothing about the image.
  if (box[2] - box[0] < 1 || box[3] - box[1] < 1) return null;
  return { image: ref, box: box.map((v) => Math.round(v * 10) / 10) as [number, number, number, number] };
}
