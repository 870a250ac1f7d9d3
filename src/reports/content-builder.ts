import { imagesDigest } from '../medgemma/request-provenance.js';
import type { Db } from '../db/connection.js';
import type { Analysis } from '../analysis/analyses.js';
import { instancesByUid } from '../catalog/catalog.js';
import { seriesRow, studyFacts } from '../catalog/studies.js';
import { uidFromNames } from '../dicom/new-uid.js';
import { pixelToPatient } from '../dicom/image-plane.js';
import { preparedToSource } from '../dicom/render/fit.js';
import { RadiantError } from '../errors.js';
import {
  AI_DISCLAIMER,
  SIGNED_AI_NOTE,
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

  // Findings the radiologist rejected stay in the versions and the audit, not in the report; the
  // others are numbered again as the reader sees them, their measurements following them.
  const kept = body.findings.filter((bf) => bf.decision !== 'rejected');
  const renumbered = new Map(kept.map((bf, i) => [bf.number, i + 1]));
  const findings = kept.map((bf): ReportFinding => {
    const images = bf.imageIndices.map(refOf).filter((x): x is ImageRef => !!x);
    return {
      number: renumbered.get(bf.number)!,
      trackingUid: bf.trackingUid,
      description: bf.description,
      anatomicalLocation: bf.anatomicalLocation,
      laterality: bf.laterality,
      category: bf.category,
      severity: bf.severity,
      // The model's while its words stand; once the radiologist wrote the finding, the radiologist's (or none).
      confidence: bf.confidence,
      images,
      region: regionOf(analysis, bf.region, refOf),
      recommendation: bf.recommendation,
      // The flags concern the model's words: gone once the radiologist rewrote the finding.
      safetyFlags:
        bf.author === 'ai' && bf.analysisIndex !== undefined
          ? analysis.safetyFlags.filter((x) => x.target === bf.analysisIndex).map((x) => ({ rule: x.rule, phrase: x.phrase }))
          : [],
      author: bf.author,
      ...(bf.decision && bf.decision !== 'rejected' ? { decision: bf.decision } : {}),
    };
  });
  const reportFlags = analysis.safetyFlags.flatMap((x) =>
    x.target === 'answer' || (x.target === 'impression' && body.impression === (analysis.impression ?? ''))
      ? [{ target: x.target, rule: x.rule, phrase: x.phrase }]
      : [],
  );

  const series = analysis.seriesInstanceUid ? await seriesRow(db, analysis.seriesInstanceUid) : undefined;
  const modality =
    series?.modality?.trim() ||
    ((s.modalities_in_study ?? '').split('\\').find((m) => m && !['SR', 'DOC', 'KO', 'PR'].includes(m)) ?? 'OT');
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
    bodyPart: series?.body_part_examined?.trim() || null,
    clinicalIndication: body.clinicalIndication,
    technique: body.technique,
    findings,
    measurements: body.measurements.flatMap((m): ReportContent['measurements'] => {
      if (m.findingNumber === null) return [{ findingNumber: null, quantity: m.quantity, value: m.value, unit: m.unit }];
      const n = renumbered.get(m.findingNumber);
      return n === undefined ? [] : [{ findingNumber: n, quantity: m.quantity, value: m.value, unit: m.unit }];
    }),
    impression: body.impression,
    comparison: body.comparison,
    limitations: body.limitations,
    safetyFlags: reportFlags,
    imageLibrary,
    algorithm: {
      name: model?.name ?? 'unknown model',
      version: f.node.softwareVersion,
      sha256: model?.sha256 ?? null,
      quantization: model?.quantization ?? null,
      backend: model?.backend ?? null,
      promptTemplate: analysis.prompt ? `${analysis.prompt.templateId} v${analysis.prompt.templateVersion}` : null,
      deviceUid: modelDeviceUid(model?.sha256 ?? null, model?.name ?? null),
      validated: model?.validated ?? false,
      validation: model?.validation.reason ?? 'no model recorded',
      provenance: provenanceParameters(analysis),
    },
    node: f.node,
    signer: f.signer,
    amendmentReason: f.amendmentReason,
    // A signed report is no longer a draft to review: it says the AI assisted, not that it must be reviewed.
    disclaimer: f.state === 'final' || f.state === 'amended' ? SIGNED_AI_NOTE : f.includeDisclaimer ? AI_DISCLAIMER : 'AI-assisted report.',
    predecessors: f.predecessors,
    createdAt: f.createdAt,
  };
}

/** The Device Observer UID of a model: stable per SHA-256 (per name when there is none, as for a remote endpoint). */
export function modelDeviceUid(sha256: string | null, name: string | null): string {
  return uidFromNames('radiant-ai-model', sha256 ?? name ?? 'unknown');
}

/** The analysis' provenance digests as TID 4019 Algorithm Parameters ("name=value"); never the model's text. */
function provenanceParameters(a: Analysis): string[] {
  const p = a.provenance;
  if (!p) return [];
  const imagesSha256 = imagesDigest(p.imageSha256);
  return [
    p.systemPromptSha256 ? `system_prompt_sha256=${p.systemPromptSha256}` : 'system_prompt=none',
    `user_prompt_sha256=${p.userPromptSha256}`,
    `schema_sha256=${p.schemaSha256}`,
    `sampling=${Object.entries(p.sampling)
      .map(([k, v]) => `${k}:${String(v)}`)
      .join(',')}`,
    `sampling_sha256=${p.samplingSha256}`,
    `images=${p.imageSha256.length}; images_sha256=${imagesSha256}`,
    ...(p.mmprojSha256 ? [`mmproj_sha256=${p.mmprojSha256}`] : []),
    `llama_build=${p.llamaBuild ?? 'unknown'}`,
    ...(p.finishReason ? [`finish_reason=${p.finishReason}`] : []),
  ];
}

/**
 * The model's box (prepared-image pixels) mapped back onto the source image's pixels, and into
 * its Frame of Reference when the analysis recorded the image's plane.
 */
function regionOf(
  analysis: Analysis,
  r: ReportBody['findings'][number]['region'],
  refOf: (i: number) => ImageRef | undefined,
): ImageRegion | null {
  if (!r) return null;
  const im = analysis.images[r.imageIndex];
  const ref = refOf(r.imageIndex);
  if (r.space === 'source') return ref ? sourceRegion(ref, r.box) : null;
  const p = im?.placement;
  if (!im || !ref || !p || p.width <= 0 || p.height <= 0) return null;
  const [x0, y0] = preparedToSource(p, [r.box[0], r.box[1]]);
  const [x1, y1] = preparedToSource(p, [r.box[2], r.box[3]]);
  // A box wholly in the padding says nothing about the image.
  if (x1 - x0 < 1 || y1 - y0 < 1) return null;
  const box = [x0, y0, x1, y1].map((v) => Math.round(v * 10) / 10) as ImageRegion['box'];
  const region: ImageRegion = { image: ref, box };
  if (im.plane) {
    const corners: Array<[number, number]> = [
      [box[0], box[1]],
      [box[2], box[1]],
      [box[2], box[3]],
      [box[0], box[3]],
    ];
    const mm = (v: number) => Math.round(v * 1000) / 1000;
    region.patient = {
      frameOfReferenceUid: im.plane.frameOfReferenceUid,
      corners: corners.map((c) => pixelToPatient(im.plane!, c).map(mm) as [number, number, number]),
    };
  }
  return region;
}

/** A radiologist's box, already in the source image's pixels: kept inside the image. */
function sourceRegion(ref: ImageRef, b: [number, number, number, number]): ImageRegion {
  const x = (v: number) => (ref.columns ? Math.min(ref.columns, Math.max(0, v)) : Math.max(0, v));
  const y = (v: number) => (ref.rows ? Math.min(ref.rows, Math.max(0, v)) : Math.max(0, v));
  return { image: ref, box: [x(b[0]), y(b[1]), x(b[2]), y(b[3])] };
}
