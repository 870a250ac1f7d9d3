import { createHash } from 'node:crypto';
import { imagesDigest } from '../medgemma/request-provenance.js';
import type { AuditLog } from '../audit/audit.js';
import { studyLastReceivedAt } from '../catalog/studies.js';
import type { AnalysisConfig } from '../config.js';
import type { Db, Trx } from '../db/connection.js';
import { errorMessage } from '../errors.js';
import type { AnalysisProgressEvent, EventBus } from '../events.js';
import type { Logger } from '../logger.js';
import { JobAbortedError, JobError } from '../jobs/errors.js';
import type { JobRow } from '../jobs/types.js';
import type { JobContext } from '../jobs/worker.js';
import { EngineError, type AnalyzeResult, type Engine } from '../medgemma/engine.js';
import type { EngineStatus } from '../medgemma/engine-host.js';
import { buildPrompt, PromptError, type BuiltPrompt } from '../medgemma/prompts/index.js';
import { checkContextBudget } from '../medgemma/context-budget.js';
import { recipeFor, recipeMessages, userText, type Recipe, type RecipeMessages } from '../medgemma/recipes.js';
import type { BlobStorage } from '../../storage/types.js';
import { assembleVolume, loadStudySeries, saveVolume, selectSeries, type AssembledVolume, type SliceHeader } from '../volumes/index.js';
import { placement } from '../dicom/render/fit.js';
import { isImagePlane, type ImagePlane } from '../dicom/image-plane.js';
import type { Renderer } from '../dicom/render/renderer.js';
import {
  getAnalysis,
  markAnalysis,
  storeOutcome,
  updateAnalysis,
  type Analysis,
  type AnalysisImageRef,
  type AnalysisProvenance,
} from './analyses.js';
import { findingsJsonSchema, readModelAnswer } from './findings-schema.js';
import { prepareImages } from './prepare-images.js';
import { promptContext } from './prompt-context.js';
import { seriesInstanceReader } from './instance-bytes.js';
import { recipeSliceOrder, slicesForRecipe } from './slice-order.js';

export const ANALYSIS_JOB = 'analysis.run';

export interface AnalysisJobPayload {
  analysisId: number;
}

export interface AnalysisJobResult {
  analysisId: number;
  status: 'succeeded' | 'skipped';
  findings?: number;
}

export interface PipelineDeps {
  db: Db;
  storage: BlobStorage;
  audit: AuditLog;
  log: Logger;
  /** The node's render pipeline, whose workers decode and map the images. */
  renderer: Renderer;
  config: AnalysisConfig;
  /** The engine when ready, else its status (why not). */
  engine(): Engine | undefined;
  engineStatus(): EngineStatus;
  /** Writes with the succeeded outcome, in its transaction (auto-publish queues its job here). */
  onStored?: (trx: Trx, analysis: Analysis) => Promise<void>;
  /** Where the analysis' progress is announced (analysis-progress: the worklist's live rows). */
  events?: EventBus;
}

/** A failure that retrying cannot fix (no analyzable series, a refused answer...). */
class Final extends JobError {
  constructor(message: string, cause?: unknown) {
    super(message, { retryable: false, cause });
  }
}

export function parseAnalysisPayload(p: unknown): AnalysisJobPayload {
  const id = (p as { analysisId?: unknown } | null)?.analysisId;
  if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0) throw new Error('analysisId must be a positive integer');
  return { analysisId: id };
}

function kindOf(vol: AssembledVolume): 'ct' | 'mr' | 'projection' | 'other' {
  if (vol.kind === 'projection') return 'projection';
  if (vol.modality === 'CT') return 'ct';
  if (vol.modality === 'MR') return 'mr';
  return 'other';
}

/**
 * One analysis, start to end: select and assemble the series, prepare images, ask the model,
 * store findings with provenance. Safe to run twice (a reclaimed job): a finished analysis is
 * left alone, and storing replaces items rather than adding to them.
 */
export async function runAnalysisJob(deps: PipelineDeps, job: JobRow<AnalysisJobPayload>, ctx: JobContext): Promise<AnalysisJobResult> {
  const { db, log } = deps;
  const id = job.payload.analysisId;
  const analysis = await getAnalysis(db, id, false);
  if (!analysis) throw new Final(`analysis ${id} does not exist`);
  if (analysis.status !== 'queued' && analysis.status !== 'running') return { analysisId: id, status: 'skipped' };
  if (
    analysis.trigger === 'auto' &&
    analysis.sourceReceivedAt &&
    (await studyChanged(db, analysis.studyInstanceUid, analysis.sourceReceivedAt))
  ) {
    // More instances arrived since the study looked stable: the scanner queues a fresh run.
    await markAnalysis(db, id, 'cancelled', {
      error: 'superseded: new instances arrived after the study was stable',
      finished_at: new Date().toISOString(),
    });
    return { analysisId: id, status: 'skipped' };
  }

  const started = Date.now();
  const timings: Record<string, number> = { queueWaitMs: Math.max(0, started - Date.parse(analysis.createdAt)) };
  const announce = (status: AnalysisProgressEvent['status'], percent: number) =>
    deps.events?.emit('analysis-progress', {
      analysisId: id,
      studyInstanceUid: analysis.studyInstanceUid,
      status,
      progress: percent / 100,
    });
  const progress = async (stage: string, percent: number) => {
    await updateAnalysis(db, id, { progress_stage: stage, progress_percent: percent });
    await ctx.progress(stage, percent);
    announce('running', percent);
  };
  await markAnalysis(db, id, 'running', { started_at: new Date().toISOString(), error: null, job_id: job.id });
  announce('running', 0);

  try {
    const engine = deps.engine();
    if (!engine) {
      const st = deps.engineStatus();
      const why = `MedGemma engine is ${st.state}${st.error ? `: ${st.error}` : ''}`;
      // Starting: worth waiting for; off or failed needs a person.
      throw st.state === 'starting' ? new JobError(why, { retryable: true }) : new Final(why);
    }

    await progress('select', 5);
    const t0 = Date.now();
    const series = await loadStudySeries(db, deps.storage, analysis.studyInstanceUid);
    if (!series.length) throw new Final(`study ${analysis.studyInstanceUid} has no stored series`);
    const selection = selectSeries(series);
    const selectionSummary = {
      selected: selection.selected?.seriesInstanceUid ?? null,
      ranked: selection.ranked.map((r) => ({ series: r.candidate.seriesInstanceUid, score: r.score, why: r.why })),
      skipped: selection.skipped,
    };
    if (!selection.selected) {
      await updateAnalysis(db, id, { selection: JSON.stringify(selectionSummary) });
      const reasons = selection.skipped.map((s) => s.reason).join('; ');
      throw new Final(`no analyzable series in the study${reasons ? ` (${reasons})` : ''}`);
    }
    const vol = assembleVolume(selection.selected);
    const volumeId = await saveVolume(db, analysis.studyInstanceUid, vol);
    timings.selectMs = Date.now() - t0;
    if (!engine.multimodal) throw new Final(`the ${engine.backend} backend takes no images`);

    // How this model wants to be asked (src/medgemma/recipes.ts): layout, image count, sampling.
    const recipe = recipeFor(deps.config.recipe, engine.modelClaim);
    const maxImages = Math.min(deps.config.maxSlices, recipe.maxImages);

    await progress('prepare', 20);
    const t1 = Date.now();
    const current = await prepareVolume(deps, analysis.studyInstanceUid, vol, maxImages, ctx.signal);
    // images[] is stored in the order sent: image i of the request is images[i].
    const images: AnalysisImageRef[] = current.refs;
    const pngs = current.pngs;
    timings.prepareMs = Date.now() - t1;

    const pc = await promptContext(db, deps.storage, analysis, vol, selection.selected, images.length);
    // A comparison looks at some of the prior's images too, after the current ones.
    const priorMax = Math.min(deps.config.priorImages, recipe.maxImages - images.length);
    if (pc.priorStudyInstanceUid && priorMax > 0) {
      const prior = await priorImages(deps, pc.priorStudyInstanceUid, priorMax, ctx.signal);
      if (prior.refs.length) {
        const first = images.length;
        for (const r of prior.refs) images.push({ ...r, index: images.length, studyInstanceUid: pc.priorStudyInstanceUid });
        pngs.push(...prior.pngs);
        pc.context.imageCount = images.length;
        // Numbered from 1, like the labels and the answer's image_numbers.
        pc.context.priorImages = `${first + 1}–${images.length}`;
      }
      timings.prepareMs = Date.now() - t1;
    }
    const template = buildPrompt(analysis.analysisType, pc.context);
    const schema = findingsJsonSchema({ maxFindings: deps.config.maxFindings, maxText: deps.config.maxText, imageCount: images.length });
    const messages = recipeMessages(recipe, {
      instruction: template.text,
      schema,
      imageCount: images.length,
      volume: vol.kind === 'volume',
    });
    const prompt = promptRecord(template, messages);
    checkBudget(engine, recipe, messages, images.length, deps.config.maxTokens);

    await progress('inference', 50);
    const t2 = Date.now();
    // The patient's own identifiers, for the gate to flag and redact if the answer echoes them (never sent).
    const patient = pc.facts;
    const result = await engine.analyze({
      images: pngs,
      ...messages,
      schema,
      maxTokens: deps.config.maxTokens,
      signal: ctx.signal,
      phi: { patientName: patient.patient_name, patientId: patient.patient_id, birthDate: patient.patient_birth_date },
    });
    timings.inferenceMs = Date.now() - t2;
    let answer;
    try {
      answer = readModelAnswer(result.json, images.length, deps.config.imageSize);
    } catch (err) {
      await updateAnalysis(db, id, { raw_text: result.rawText });
      throw new Final(`model answer does not match the findings schema: ${errorMessage(err)}`, err);
    }
    await progress('store', 90);
    const store = (o: Parameters<typeof storeOutcome>[2]) =>
      storeOutcome(db, id, o, undefined, deps.onStored && ((trx) => deps.onStored!(trx, analysis)));
    Object.assign(timings, {
      promptMs: result.timings.promptMs,
      predictedMs: result.timings.predictedMs,
      tokens: result.timings.tokens,
      tokensPerSecond: result.timings.tokensPerSecond,
      totalMs: Date.now() - started + timings.queueWaitMs!,
    });
    const stored = await store({
      seriesInstanceUid: vol.seriesInstanceUid,
      volumeId,
      priorStudyInstanceUid: pc.priorStudyInstanceUid,
      model: result.model,
      backend: result.backend,
      prompt: { templateId: prompt.templateId, templateVersion: prompt.templateVersion, hash: prompt.hash, text: prompt.text },
      images,
      answer,
      rawText: result.rawText,
      safetyFlags: [...result.safetyFlags, ...answer.flags.map((rule) => ({ target: 'answer' as const, phrase: '', rule }))],
      provenance: provenanceOf(result),
      timings,
      selection: { ...selectionSummary, problems: vol.problems, skippedImages: current.skipped },
    });
    await deps.audit.record({
      actorType: analysis.trigger === 'manual' && analysis.requestedBy ? 'user' : 'system',
      actor: analysis.trigger === 'manual' ? (analysis.requestedBy ?? undefined) : 'auto-analyze',
      action: 'ai.analysis',
      resourceType: 'analysis',
      resourceId: String(id),
      studyInstanceUid: analysis.studyInstanceUid,
      outcome: 'success',
      model: `${result.model.name}${result.model.sha256 ? `@sha256:${result.model.sha256}` : ''}`,
      promptHash: prompt.hash,
      details: {
        trigger: analysis.trigger,
        type: analysis.analysisType,
        images: images.length,
        findings: answer.findings.length,
        backend: result.backend,
        stored,
        // Identifiers and digests only: the audit trail holds no model text.
        provenance: auditProvenance(provenanceOf(result)),
      },
    });
    log.info({ analysis: id, findings: answer.findings.length, ms: Date.now() - started }, 'analysis stored');
    if (stored) announce('succeeded', 100);
    return { analysisId: id, status: stored ? 'succeeded' : 'skipped', findings: answer.findings.length };
  } catch (err) {
    await recordFailure(deps, analysis, job, err, ctx.signal);
    throw translate(err, ctx.signal);
  }
}

/** The analysis' provenance from the engine's answer. */
function provenanceOf(result: AnalyzeResult): AnalysisProvenance {
  const t = result.timings;
  return {
    ...(result.request ?? unknownRequest),
    modelSha256: result.model.sha256,
    mmprojSha256: result.model.mmproj?.sha256 ?? null,
    modelValidated: result.model.validated,
    promptTokens: t.promptTokens ?? null,
    predictedTokens: t.tokens,
    finishReason: result.finishReason,
    timings: { promptMs: t.promptMs, predictedMs: t.predictedMs, totalMs: t.totalMs, tokensPerSecond: t.tokensPerSecond },
  };
}

const unknownRequest = {
  systemPromptSha256: null,
  userPromptSha256: '',
  schemaSha256: '',
  sampling: {},
  samplingSha256: '',
  imageSha256: [],
  llamaBuild: null,
};

/** The provenance as the audit row carries it: the per-image digests folded into one. */
function auditProvenance(p: AnalysisProvenance): Record<string, unknown> {
  const { imageSha256, timings: _timings, sampling: _sampling, ...rest } = p;
  return { ...rest, images: imageSha256.length, imagesSha256: imagesDigest(imageSha256) };
}

interface PreparedVolume {
  refs: AnalysisImageRef[];
  pngs: Buffer[];
  skipped: unknown[];
}

/** The prompt as stored: the template's id and version, the user text sent and its SHA-256. */
function promptRecord(t: BuiltPrompt, m: RecipeMessages): { templateId: string; templateVersion: string; hash: string; text: string } {
  const text = userText(m);
  return { templateId: t.templateId, templateVersion: t.templateVersion, hash: createHash('sha256').update(text).digest('hex'), text };
}

/** The request must fit the model's context, checked before anything is sent (context-budget.ts). */
function checkBudget(engine: Engine, recipe: Recipe, m: RecipeMessages, images: number, maxTokens: number): void {
  if (engine.contextTokens === undefined) return;
  checkContextBudget({
    images,
    imageTokens: engine.imageTokens ?? recipe.imageTokens,
    textChars: (m.systemPrompt?.length ?? 0) + userText(m).length,
    maxTokens,
    contextTokens: engine.contextTokens,
  });
}

/**
 * Up to `max` images of an assembled volume, in the recipe's order (slice-order.ts), with where
 * each came from and how it was placed.
 */
async function prepareVolume(
  deps: PipelineDeps,
  studyInstanceUid: string,
  vol: AssembledVolume,
  max: number,
  signal: AbortSignal,
): Promise<PreparedVolume> {
  const slices = slicesForRecipe(recipeSliceOrder(vol.slices), max, vol.kind === 'volume');
  const prepared = await prepareImages({
    kind: kindOf(vol),
    slices: slices.map((s) => ({ sopInstanceUid: s.sopInstanceUid, frameNumber: s.frameNumber })),
    maxImages: max,
    size: deps.config.imageSize,
    readInstance: await seriesInstanceReader(deps.db, deps.storage, studyInstanceUid, vol.seriesInstanceUid),
    signal,
    renderer: deps.renderer,
  });
  const headers = new Map(vol.slices.map((s) => [`${s.sopInstanceUid}|${s.frameNumber}`, s]));
  const refs = prepared.images.map((im, index): AnalysisImageRef => {
    const h = headers.get(`${im.sopInstanceUid}|${im.frameNumber}`);
    const plane = h && planeOf(h);
    return {
      index,
      sopInstanceUid: im.sopInstanceUid,
      frameNumber: im.frameNumber,
      seriesInstanceUid: vol.seriesInstanceUid,
      ...(h
        ? { placement: { ...placement(h.columns, h.rows, pixelAspectOf(h), deps.config.imageSize), rows: h.rows, columns: h.columns } }
        : {}),
      ...(plane ? { plane } : {}),
    };
  });
  return { refs, pngs: prepared.images.map((i) => i.png), skipped: prepared.skipped };
}

/** The prior study's best series, prepared like the current one; none when it has nothing to show or fails. */
async function priorImages(deps: PipelineDeps, studyInstanceUid: string, max: number, signal: AbortSignal): Promise<PreparedVolume> {
  try {
    const selected = selectSeries(await loadStudySeries(deps.db, deps.storage, studyInstanceUid)).selected;
    if (!selected) return { refs: [], pngs: [], skipped: [] };
    return await prepareVolume(deps, studyInstanceUid, assembleVolume(selected), max, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    // The prior's findings and text still go into the prompt; only its pictures are missing.
    deps.log.warn({ study: studyInstanceUid, err: errorMessage(err) }, 'prior study images not prepared');
    return { refs: [], pngs: [], skipped: [] };
  }
}

/** The slice's plane in its Frame of Reference, when its header gives a usable one. */
function planeOf(h: SliceHeader): ImagePlane | undefined {
  const plane = {
    frameOfReferenceUid: h.frameOfReferenceUid,
    imagePositionPatient: h.imagePositionPatient,
    imageOrientationPatient: h.imageOrientationPatient,
    pixelSpacing: h.pixelSpacing,
  };
  return isImagePlane(plane) ? plane : undefined;
}

/** Pixel width / height, as image preparation computes it (PixelSpacing is [row, column] spacing). */
function pixelAspectOf(h: SliceHeader): number {
  const s = h.pixelSpacing ?? h.imagerPixelSpacing;
  return s && s[0] > 0 && s[1] > 0 ? s[1] / s[0] : 1;
}

async function studyChanged(db: Db, studyInstanceUid: string, sourceReceivedAt: string): Promise<boolean> {
  const at = await studyLastReceivedAt(db, studyInstanceUid);
  return !!at && at.toISOString() !== sourceReceivedAt;
}

/** Engine errors become job errors with the engine's own idea of retrying. */
function translate(err: unknown, signal: AbortSignal): unknown {
  if (signal.aborted && signal.reason instanceof JobAbortedError) return signal.reason;
  if (err instanceof JobError || err instanceof JobAbortedError) return err;
  if (err instanceof EngineError) return new JobError(`MedGemma ${err.kind}: ${err.message}`, { retryable: err.retryable, cause: err });
  if (err instanceof PromptError) return new Final(err.message, err);
  return err;
}

function announceStatus(deps: PipelineDeps, a: Analysis, status: AnalysisProgressEvent['status']): void {
  deps.events?.emit('analysis-progress', { analysisId: a.id, studyInstanceUid: a.studyInstanceUid, status, progress: 0 });
}

async function recordFailure(
  deps: PipelineDeps,
  analysis: Analysis,
  job: JobRow<AnalysisJobPayload>,
  err: unknown,
  signal: AbortSignal,
): Promise<void> {
  const t = translate(err, signal);
  if (t instanceof JobAbortedError) {
    // Cancelled by a person: the route marked it. Lost or shut down: it runs again elsewhere.
    if (t.reason !== 'cancelled') {
      await markAnalysis(deps.db, analysis.id, 'queued', { progress_stage: 'requeued', error: `interrupted (${t.reason})` });
      announceStatus(deps, analysis, 'queued');
    }
    return;
  }
  const retryable = t instanceof JobError ? t.retryable : true;
  const message = errorMessage(t);
  const willRetry = retryable && job.attempts < job.maxAttempts;
  // What the model said, verbatim, even when it could not be used (raw_answer of a failed analysis).
  const engineErr = err instanceof EngineError ? err : undefined;
  const raw = engineErr?.details.rawText !== undefined ? { raw_text: engineErr.details.rawText } : {};
  if (willRetry) {
    await markAnalysis(deps.db, analysis.id, 'queued', {
      error: `attempt ${job.attempts} of ${job.maxAttempts} failed: ${message}; will retry`,
      progress_stage: 'retrying',
      ...raw,
    });
  } else {
    await markAnalysis(deps.db, analysis.id, 'failed', { error: message, finished_at: new Date().toISOString(), ...raw });
  }
  announceStatus(deps, analysis, willRetry ? 'queued' : 'failed');
  await deps.audit.record({
    actorType: analysis.trigger === 'manual' && analysis.requestedBy ? 'user' : 'system',
    actor: analysis.trigger === 'manual' ? (analysis.requestedBy ?? undefined) : 'auto-analyze',
    action: 'ai.analysis',
    resourceType: 'analysis',
    resourceId: String(analysis.id),
    studyInstanceUid: analysis.studyInstanceUid,
    outcome: 'failure',
    details: { trigger: analysis.trigger, type: analysis.analysisType, error: message.slice(0, 500), attempt: job.attempts, willRetry },
  });
}
