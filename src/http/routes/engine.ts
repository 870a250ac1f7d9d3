import type { RouterInstance } from '@koa/router';
import { ANALYSIS_JOB } from '../../analysis/pipeline.js';
import { testEngine } from '../../medgemma/engine-test.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, ok, secured } from '../api-doc.js';

/** Failed analysis jobs shown as the engine's last errors. */
const LAST_ERRORS = 5;

/**
 * GET /api/engine: whether the MedGemma engine is off, starting, ready or failed (and why), its
 * model (SHA-256, validated or not), the device asked for, the analysis queue and its last errors.
 * POST /api/engine/test: a tiny test call (synthetic image, no patient data), admins only.
 */
export function registerEngineRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const m = deps.config.medgemma;
  r.get('/api/engine', deps.security.guard('analysis:run', 'engine.status', 'engine'), async (ctx: AppContext) => {
    const depth = (await deps.queue.depth()).filter((d) => d.kind === ANALYSIS_JOB);
    const count = (status: string) => depth.find((d) => d.status === status)?.count ?? 0;
    const failed = await deps.queue.list({ kind: ANALYSIS_JOB, status: 'failed', limit: LAST_ERRORS });
    ctx.body = {
      ...deps.engine.status,
      device: m.device,
      gpu_layers: m.gpuLayers,
      max_concurrency: m.maxConcurrency,
      allow_unvalidated_model: m.allowUnvalidatedModel,
      queue: { pending: count('pending'), running: count('running'), failed: count('failed') },
      last_errors: failed.map((j) => ({ job_id: j.id, error: j.error, at: j.finishedAt ?? j.updatedAt })),
    };
  });

  r.post('/api/engine/test', deps.security.guard('nodes:manage', 'engine.test', 'engine'), async (ctx: AppContext) => {
    const engine = deps.engine.ready;
    const status = deps.engine.status;
    if (!engine) throw new HttpError(503, 'engine_unavailable', `the engine is ${status.state}${status.error ? `: ${status.error}` : ''}`);
    const out = await testEngine(engine, Math.min(m.timeoutMs, 120_000));
    ctx.state.audit = { details: { ok: out.ok, latencyMs: out.latencyMs } };
    ctx.body = {
      ok: out.ok,
      latency_ms: out.latencyMs,
      answer: out.answer,
      error: out.error,
      images_sent: out.images,
      backend: engine.backend,
      model: status.model ? { name: status.model.name, sha256: status.model.sha256, validated: status.model.validated } : null,
    };
  });
}

documentRoutes(
  secured('analysis:run', {
    method: 'get',
    path: '/api/engine',
    tags: ['engine'],
    summary:
      'MedGemma engine status: off, starting, ready or failed (with the reason), backend, model identity (SHA-256, validated), ' +
      'device, analysis queue depth and the last errors',
    responses: { 200: ok('The status', { type: 'object' }), ...GUARDED },
  }),
  secured('nodes:manage', {
    method: 'post',
    path: '/api/engine/test',
    tags: ['engine'],
    summary:
      'A test call: a 64×64 synthetic image (no patient data) and a short question; the latency and the answer or the error ' +
      '(200 either way, ok says which); 503 when the engine is not ready',
    responses: { 200: ok('{ok, latency_ms, answer, error, ...}', { type: 'object' }), ...GUARDED, 503: E[503] },
  }),
);
