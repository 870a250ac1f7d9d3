import type { Db, Trx } from '../db/connection.js';
import {
  analysisRow,
  findingRows,
  insertAnalysisRow,
  markAnalysisRow,
  measurementRows,
  storeAnalysisOutcome,
  studyAnalysisRows,
  updateAnalysisRow,
  type AnalysisColumns,
  type AnalysisRow,
  type AnalysisStatus,
  type AnalysisTrigger,
  type FindingRow,
} from '../catalog/analyses.js';
import type { ModelIdentity, RequestProvenance, SafetyFlag } from '../medgemma/engine.js';
import type { ModelValidation } from '../medgemma/known-models.js';
import type { AnalysisType } from '../medgemma/prompts/index.js';
import { asSafetyFlag } from '../medgemma/safety-gate.js';
import type { ModelAnswer } from './findings-schema.js';
import type { ImagePlane } from '../dicom/image-plane.js';
import type { PlacedImage } from '../dicom/render/fit.js';

/**
 * The analyses as the pipeline, the API and the reports see them: the rows of the index
 * (src/catalog/analyses.ts) with their JSON parsed and their timestamps as ISO strings.
 */

export interface AnalysisImageRef {
  index: number;
  sopInstanceUid: string;
  frameNumber: number;
  seriesInstanceUid: string;
  /** Set for a prior study's image (comparison); absent: the analysed study. */
  studyInstanceUid?: string;
  /** Where the source image sits in the prepared square (for mapping regions back): scale and offset. */
  placement?: PlacedImage;
  /** The image's plane in its Frame of Reference, when it has one (the SR's SCOORD3D). */
  plane?: ImagePlane;
}

export interface AnalysisTimings {
  queueWaitMs?: number;
  selectMs?: number;
  prepareMs?: number;
  inferenceMs?: number;
  promptMs?: number;
  predictedMs?: number;
  tokens?: number;
  tokensPerSecond?: number;
  totalMs?: number;
}

/** The model that answered, as the engine identified it. */
export interface AnalysisModel {
  name: string;
  sha256: string | null;
  quantization: string | null;
  mmprojSha256: string | null;
  backend: string | null;
  /** False also for analyses stored before identities were recorded: nothing vouches for them. */
  validated: boolean;
  validation: ModelValidation;
  architecture: string | null;
  ggufName: string | null;
  bytes: number | null;
  parameters: number | null;
  mmproj: ModelIdentity['mmproj'] | null;
}

/**
 * Everything needed to say what produced an answer: digests of what was sent (prompts, schema,
 * sampling, every image), the model and projector files, the llama.cpp build, token counts,
 * finish_reason and timings. Identifiers and digests only: no patient data.
 */
export interface AnalysisProvenance extends RequestProvenance {
  modelSha256: string | null;
  mmprojSha256: string | null;
  modelValidated: boolean;
  promptTokens: number | null;
  predictedTokens: number | null;
  finishReason: string | null;
  timings: { promptMs: number; predictedMs: number; totalMs: number; tokensPerSecond: number } | null;
}

const NOT_IDENTIFIED: ModelValidation = { basis: 'none', reason: 'analysed before model identities were recorded' };

export interface Finding {
  index: number;
  description: string;
  anatomicalLocation: string | null;
  laterality: string | null;
  category: string | null;
  severity: string | null;
  confidence: number;
  imageIndices: number[];
  recommendation: string | null;
  /** box: prepared-image pixels [x0, y0, x1, y1]; box2d: the model's [y0, x0, y1, x1] on 0–1000 (absent before it was kept). */
  region: { imageIndex: number; box: [number, number, number, number]; box2d?: [number, number, number, number] } | null;
}

export interface Measurement {
  index: number;
  finding: string | null;
  quantity: string;
  value: number;
  unit: string;
}

export interface Analysis {
  id: number;
  studyInstanceUid: string;
  status: AnalysisStatus;
  analysisType: AnalysisType;
  trigger: AnalysisTrigger;
  requestedBy: string | null;
  clinicalIndication: string | null;
  focus: string | null;
  jobId: number | null;
  progress: { stage: string | null; percent: number | null };
  sourceReceivedAt: string | null;
  seriesInstanceUid: string | null;
  volumeId: number | null;
  priorStudyInstanceUid: string | null;
  model: AnalysisModel | null;
  prompt: { templateId: string; templateVersion: string; hash: string; text: string | null } | null;
  images: AnalysisImageRef[];
  impression: string | null;
  comparison: string | null;
  technicalLimitations: string | null;
  safetyFlags: SafetyFlag[];
  /** The model's text verbatim (also of a failed analysis); never published into DICOM. */
  rawAnswer: string | null;
  provenance: AnalysisProvenance | null;
  timings: AnalysisTimings;
  selection: unknown;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Always true: every AI result is a draft until a radiologist signs a report built on it. */
  aiDraft: true;
  findings?: Finding[];
  measurements?: Measurement[];
}

const iso = (v: string | Date | null): string | null =>
  v === null ? null : v instanceof Date ? v.toISOString() : new Date(v).toISOString();
const parse = <T>(v: string | null, fallback: T): T => {
  if (!v) return fallback;
  try {
    return JSON.parse(v) as T;
  } catch {
    return fallback;
  }
};

function modelOf(r: AnalysisRow): AnalysisModel | null {
  if (!r.model_name) return null;
  const id = parse<Partial<ModelIdentity> | null>(r.model_identity, null);
  return {
    name: r.model_name,
    sha256: r.model_sha256,
    quantization: r.model_quantization,
    mmprojSha256: r.mmproj_sha256,
    backend: r.backend,
    validated: id?.validated === true,
    validation: id?.validation ?? NOT_IDENTIFIED,
    architecture: id?.architecture ?? null,
    ggufName: id?.ggufName ?? null,
    bytes: id?.bytes ?? null,
    parameters: id?.parameters ?? null,
    mmproj: id?.mmproj ?? null,
  };
}

function fromRow(r: AnalysisRow): Analysis {
  return {
    id: Number(r.id),
    studyInstanceUid: r.study_instance_uid,
    status: r.status,
    analysisType: r.analysis_type as AnalysisType,
    trigger: r.trigger,
    requestedBy: r.requested_by,
    clinicalIndication: r.clinical_indication,
    focus: r.focus,
    jobId: r.job_id === null ? null : Number(r.job_id),
    progress: { stage: r.progress_stage, percent: r.progress_percent === null ? null : Number(r.progress_percent) },
    sourceReceivedAt: r.source_received_at,
    seriesInstanceUid: r.series_instance_uid,
    volumeId: r.volume_id === null ? null : Number(r.volume_id),
    priorStudyInstanceUid: r.prior_study_instance_uid,
    model: modelOf(r),
    prompt:
      r.prompt_template_id && r.prompt_hash
        ? { templateId: r.prompt_template_id, templateVersion: r.prompt_template_version ?? '', hash: r.prompt_hash, text: r.prompt_text }
        : null,
    images: parse<AnalysisImageRef[]>(r.images, []),
    impression: r.impression,
    comparison: r.comparison,
    technicalLimitations: r.technical_limitations,
    safetyFlags: parse<Array<SafetyFlag | string>>(r.safety_flags, []).map(asSafetyFlag),
    rawAnswer: r.raw_text,
    provenance: parse<AnalysisProvenance | null>(r.provenance, null),
    timings: parse<AnalysisTimings>(r.timings, {}),
    selection: parse<unknown>(r.selection, null),
    error: r.error,
    createdAt: iso(r.created_at) ?? '',
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    aiDraft: true,
  };
}

export interface NewAnalysis {
  studyInstanceUid: string;
  analysisType: AnalysisType;
  trigger: AnalysisTrigger;
  requestedBy?: string;
  clinicalIndication?: string;
  focus?: string;
  sourceReceivedAt?: string;
}

export async function createAnalysis(db: Db | Trx, a: NewAnalysis, now = new Date()): Promise<number> {
  return insertAnalysisRow(db, {
    study_instance_uid: a.studyInstanceUid,
    analysis_type: a.analysisType,
    trigger: a.trigger,
    requested_by: a.requestedBy ?? null,
    clinical_indication: a.clinicalIndication ?? null,
    focus: a.focus ?? null,
    source_received_at: a.sourceReceivedAt ?? null,
    created_at: now.toISOString(),
  });
}

export async function setAnalysisJob(db: Db | Trx, id: number, jobId: number): Promise<void> {
  await updateAnalysisRow(db, id, { job_id: jobId });
}

export async function getAnalysis(db: Db, id: number, withItems = true): Promise<Analysis | undefined> {
  const row = await analysisRow(db, id);
  if (!row) return undefined;
  const a = fromRow(row);
  if (withItems) {
    a.findings = (await findingRows(db, id)).map(findingFromRow);
    a.measurements = (await measurementRows(db, id)).map((m) => ({
      index: Number(m.idx),
      finding: m.finding,
      quantity: m.quantity,
      value: Number(m.value),
      unit: m.unit,
    }));
  }
  return a;
}

export async function listStudyAnalyses(db: Db, studyInstanceUid: string): Promise<Analysis[]> {
  return (await studyAnalysisRows(db, studyInstanceUid)).map(fromRow);
}

function findingFromRow(f: FindingRow): Finding {
  return {
    index: Number(f.idx),
    description: f.description,
    anatomicalLocation: f.anatomical_location,
    laterality: f.laterality,
    category: f.category,
    severity: f.severity,
    confidence: Number(f.confidence),
    imageIndices: parse<number[]>(f.image_indices, []),
    recommendation: f.recommendation,
    region: parse<Finding['region']>(f.region, null),
  };
}

export async function updateAnalysis(db: Db, id: number, fields: AnalysisColumns): Promise<void> {
  await updateAnalysisRow(db, id, fields);
}

/** Only a queued or running analysis moves; a finished one keeps its outcome. */
export async function markAnalysis(db: Db, id: number, status: AnalysisStatus, fields: AnalysisColumns = {}): Promise<boolean> {
  return markAnalysisRow(db, id, status, fields);
}

export interface AnalysisOutcome {
  seriesInstanceUid: string;
  volumeId: number | null;
  priorStudyInstanceUid: string | null;
  model: ModelIdentity;
  backend: string;
  prompt: { templateId: string; templateVersion: string; hash: string; text: string };
  images: AnalysisImageRef[];
  answer: ModelAnswer;
  rawText: string;
  safetyFlags: SafetyFlag[];
  provenance: AnalysisProvenance;
  timings: AnalysisTimings;
  selection: unknown;
}

/** The identity minus what other columns hold already. */
function identityColumn(m: ModelIdentity): Partial<ModelIdentity> {
  return {
    validated: m.validated,
    validation: m.validation,
    architecture: m.architecture,
    ggufName: m.ggufName,
    bytes: m.bytes,
    parameters: m.parameters,
    mmproj: m.mmproj,
  };
}

/**
 * Stores the answer and marks the analysis succeeded, in one transaction: a retried job that
 * had already stored replaces its items instead of doubling them. `also`: more writes of that
 * transaction (the auto-publish job of an automatic analysis).
 */
export async function storeOutcome(
  db: Db,
  id: number,
  o: AnalysisOutcome,
  now = new Date(),
  also?: (trx: Trx) => Promise<void>,
): Promise<boolean> {
  const fields: AnalysisColumns = {
    progress_stage: 'done',
    progress_percent: 100,
    series_instance_uid: o.seriesInstanceUid,
    volume_id: o.volumeId,
    prior_study_instance_uid: o.priorStudyInstanceUid,
    model_name: o.model.name.slice(0, 256),
    model_sha256: o.model.sha256,
    model_quantization: o.model.quantization,
    mmproj_sha256: o.model.mmproj?.sha256 ?? null,
    model_identity: JSON.stringify(identityColumn(o.model)),
    provenance: JSON.stringify(o.provenance),
    backend: o.backend,
    prompt_template_id: o.prompt.templateId,
    prompt_template_version: o.prompt.templateVersion,
    prompt_hash: o.prompt.hash,
    prompt_text: o.prompt.text,
    images: JSON.stringify(o.images),
    impression: o.answer.impression,
    comparison: o.answer.comparison_with_prior,
    technical_limitations: o.answer.technical_limitations,
    raw_text: o.rawText,
    safety_flags: JSON.stringify(o.safetyFlags),
    timings: JSON.stringify(o.timings),
    selection: JSON.stringify(o.selection),
    error: null,
    finished_at: now.toISOString(),
  };
  const findings = o.answer.findings.map((f, idx) => ({
    idx,
    description: f.description,
    anatomical_location: f.anatomical_location.slice(0, 256) || null,
    laterality: f.laterality,
    category: f.category,
    severity: f.severity,
    confidence: f.confidence,
    image_indices: JSON.stringify(f.image_indices),
    recommendation: f.recommendation || null,
    region: f.region ? JSON.stringify(f.region) : null,
  }));
  const measurements = o.answer.measurements.map((m, idx) => ({
    idx,
    finding: m.finding || null,
    quantity: m.quantity.slice(0, 128),
    value: m.value,
    unit: m.unit.slice(0, 32),
  }));
  return storeAnalysisOutcome(db, id, fields, findings, measurements, also);
}
