import type { RouterInstance } from '@koa/router';
import { z } from 'zod';
import { parsePk, parseStudyRef } from '../../records/schemas.js';
import { getAnalysis, listStudyAnalyses, type Analysis, type AnalysisProvenance } from '../../analysis/analyses.js';
import { cancelAnalysis, requestAnalysis } from '../../analysis/requests.js';
import { studyIdentity } from '../../catalog/studies.js';
import { autoPublishConfig, autoPublishStatus } from '../../reports/auto-publish.js';
import { readJson } from '../body.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, idParams, json, ok, ref, secured, studyRefParams } from '../api-doc.js';

const requestBody = z
  .object({
    study_id: z.union([z.number().int().positive(), z.string().min(1).max(64)]),
    clinical_indication: z.string().trim().max(1000).optional(),
    analysis_type: z.enum(['primary', 'comparison', 'focused']).default('primary'),
    focus: z.string().trim().min(1).max(1000).optional(),
  })
  .strict()
  .refine((b) => b.analysis_type !== 'focused' || !!b.focus, {
    message: 'focus is required when analysis_type is focused',
    path: ['focus'],
  });

function provenanceView(p: AnalysisProvenance): Record<string, unknown> {
  return {
    system_prompt_sha256: p.systemPromptSha256,
    user_prompt_sha256: p.userPromptSha256,
    schema_sha256: p.schemaSha256,
    sampling: p.sampling,
    sampling_sha256: p.samplingSha256,
    image_sha256: p.imageSha256,
    model_sha256: p.modelSha256,
    mmproj_sha256: p.mmprojSha256,
    model_validated: p.modelValidated,
    llama_build: p.llamaBuild,
    prompt_tokens: p.promptTokens,
    predicted_tokens: p.predictedTokens,
    finish_reason: p.finishReason,
    timings: p.timings && {
      prompt_ms: p.timings.promptMs,
      predicted_ms: p.timings.predictedMs,
      total_ms: p.timings.totalMs,
      tokens_per_second: p.timings.tokensPerSecond,
    },
  };
}

/** The API's view: snake_case, findings and measurements inline, always flagged as an AI draft. */
export function analysisView(a: Analysis): Record<string, unknown> {
  return {
    id: a.id,
    study_instance_uid: a.studyInstanceUid,
    status: a.status,
    analysis_type: a.analysisType,
    trigger: a.trigger,
    requested_by: a.requestedBy,
    clinical_indication: a.clinicalIndication,
    focus: a.focus,
    progress: a.progress,
    ai_draft: true,
    review_status: 'awaiting radiologist review',
    series_instance_uid: a.seriesInstanceUid,
    prior_study_instance_uid: a.priorStudyInstanceUid,
    model: a.model && {
      name: a.model.name,
      sha256: a.model.sha256,
      quantization: a.model.quantization,
      mmproj_sha256: a.model.mmprojSha256,
      backend: a.model.backend,
      validated: a.model.validated,
      validation: a.model.validation,
      architecture: a.model.architecture,
      gguf_name: a.model.ggufName,
      bytes: a.model.bytes,
      parameters: a.model.parameters,
      mmproj: a.model.mmproj && {
        name: a.model.mmproj.name,
        sha256: a.model.mmproj.sha256,
        bytes: a.model.mmproj.bytes ?? null,
        projection_dim: a.model.mmproj.projectionDim ?? null,
        matches_model: a.model.mmproj.matchesModel ?? null,
      },
    },
    prompt: a.prompt && {
      template_id: a.prompt.templateId,
      template_version: a.prompt.templateVersion,
      hash: a.prompt.hash,
      text: a.prompt.text,
    },
    images: a.images.map((i) => ({
      index: i.index,
      sop_instance_uid: i.sopInstanceUid,
      frame_number: i.frameNumber,
      series_instance_uid: i.seriesInstanceUid,
      ...(i.studyInstanceUid ? { study_instance_uid: i.studyInstanceUid } : {}),
    })),
    findings: a.findings?.map((f) => ({
      index: f.index,
      description: f.description,
      anatomical_location: f.anatomicalLocation,
      laterality: f.laterality,
      category: f.category,
      severity: f.severity,
      confidence: f.confidence,
      image_indices: f.imageIndices,
      recommendation: f.recommendation,
    })),
    measurements: a.measurements?.map((m) => ({ index: m.index, finding: m.finding, quantity: m.quantity, value: m.value, unit: m.unit })),
    impression: a.impression,
    comparison_with_prior: a.comparison,
    technical_limitations: a.technicalLimitations,
    safety_flags: a.safetyFlags.map((f) => ({ target: f.target, phrase: f.phrase, rule: f.rule })),
    raw_answer: a.rawAnswer,
    provenance: a.provenance && provenanceView(a.provenance),
    timings: a.timings,
    error: a.error,
    created_at: a.createdAt,
    started_at: a.startedAt,
    finished_at: a.finishedAt,
  };
}

/**
 * /api/analysis: ask for an AI analysis of a study, follow it, cancel it. Radiologists, admins
 * and service clients (`analysis:run`); each request is audited with the study it concerns.
 */
export function registerAnalysisRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const { db, security } = deps;

  const studyUidOf = async (ref: { pk: number } | { uid: string }): Promise<{ uid: string; patientId: string } | undefined> => {
    const study = await studyIdentity(db, ref);
    return study && { uid: study.studyInstanceUid, patientId: study.patientId };
  };

  r.post('/api/analysis', security.guard('analysis:run', 'analysis.request', 'analysis'), async (ctx: AppContext) => {
    const body = await readJson(ctx, requestBody);
    const study = await studyUidOf(parseStudyRef(String(body.study_id)));
    if (!study) throw new HttpError(404, 'not_found', 'study not found');
    const a = await requestAnalysis(deps.analysis, {
      studyInstanceUid: study.uid,
      analysisType: body.analysis_type,
      trigger: 'manual',
      requestedBy: ctx.state.principal?.username,
      clinicalIndication: body.clinical_indication || undefined,
      focus: body.focus,
    });
    ctx.state.audit = {
      resourceId: String(a.id),
      studyInstanceUid: study.uid,
      patientId: study.patientId,
      details: { type: body.analysis_type },
    };
    ctx.status = 202;
    ctx.set('Location', `${ctx.state.basePath}/api/analysis/${a.id}`);
    ctx.body = analysisView(a);
  });

  r.get('/api/analysis/:id', security.guard('images:read', 'analysis.read', 'analysis'), async (ctx: AppContext) => {
    const a = await getAnalysis(db, parsePk(ctx.params.id, 'analysis'));
    if (!a) throw new HttpError(404, 'not_found', 'analysis not found');
    ctx.state.audit = { resourceId: String(a.id), studyInstanceUid: a.studyInstanceUid };
    const ap = await autoPublishStatus(db, a, autoPublishConfig(deps.config));
    ctx.body = { ...analysisView(a), auto_publish: { status: ap.status, reason: ap.reason, report_id: ap.reportId } };
  });

  r.get('/api/studies/:id/analyses', security.guard('images:read', 'analysis.list', 'analysis'), async (ctx: AppContext) => {
    const study = await studyUidOf(parseStudyRef(ctx.params.id));
    if (!study) throw new HttpError(404, 'not_found', 'study not found');
    const items = await listStudyAnalyses(db, study.uid);
    ctx.state.audit = { studyInstanceUid: study.uid, patientId: study.patientId, details: { returned: items.length } };
    ctx.body = { items: items.map(analysisView) };
  });

  r.post('/api/analysis/:id/cancel', security.guard('analysis:run', 'analysis.cancel', 'analysis'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'analysis');
    const a = await getAnalysis(db, id, false);
    if (!a) throw new HttpError(404, 'not_found', 'analysis not found');
    const changed = await cancelAnalysis(deps.analysis, id, ctx.state.principal?.username);
    ctx.state.audit = { resourceId: String(id), studyInstanceUid: a.studyInstanceUid, details: { cancelled: changed } };
    if (!changed) throw new HttpError(409, 'already_finished', `analysis ${id} is already ${a.status}`);
    const now = await getAnalysis(db, id);
    ctx.body = now ? analysisView(now) : {};
  });
}

documentRoutes(
  secured('analysis:run', {
    method: 'post',
    path: '/api/analysis',
    tags: ['analysis'],
    summary: 'Ask for an AI analysis (an AI draft for review)',
    request: { body: { required: true, content: json(requestBody) } },
    responses: { 202: ok('Queued; Location names it', ref('Analysis')), 400: E[400], ...GUARDED, 404: E[404] },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/analysis/{id}',
    tags: ['analysis'],
    summary:
      'An analysis: status and progress, findings, measurements, impression, the raw answer, safety flags, ' +
      'the model (validated or not), images in the order sent, provenance, timings; ' +
      'auto_publish {status: off|held|pending|published, reason, report_id}: what AUTO_PUBLISH did with it and why',
    request: { params: idParams('analysis') },
    responses: { 200: ok('The analysis', ref('Analysis')), 400: E[400], ...GUARDED, 404: E[404] },
  }),
  secured('analysis:run', {
    method: 'post',
    path: '/api/analysis/{id}/cancel',
    tags: ['analysis'],
    summary: 'Cancel a queued or running analysis',
    request: { params: idParams('analysis') },
    responses: { 200: ok('Cancelled', ref('Analysis')), 400: E[400], ...GUARDED, 404: E[404], 409: E[409] },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/studies/{id}/analyses',
    tags: ['analysis'],
    summary: "A study's analyses, newest first",
    request: { params: studyRefParams },
    responses: { 200: ok('The analyses', ref('AnalysisList')), 400: E[400], ...GUARDED, 404: E[404] },
  }),
);
