import type { RouterInstance } from '@koa/router';
import { z } from 'zod';
import { parsePk, parseStudyRef } from '../../records/schemas.js';
import { getAnalysis, type Analysis } from '../../analysis/analyses.js';
import type { ReportContent } from '../../reports/content.js';
import { findInstance } from '../../catalog/catalog.js';
import { studyIdentity } from '../../catalog/studies.js';
import { personDisplayName } from '../../auth/users.js';
import { confirmPassword } from '../../auth/reauth.js';
import { FailureLimiter } from '../../auth/rate-limit.js';
import { bodyPatch } from '../../reports/body.js';
import { buildContent } from '../../reports/content-builder.js';
import { currentObjects } from '../../reports/publish.js';
import { getReport, listVersions, type Report } from '../../reports/report-store.js';
import {
  amendReport,
  awaitPublished,
  createReport,
  editReport,
  signReport,
  workflowDeps,
  type Actor,
  type PublishTicket,
  type WorkflowDeps,
} from '../../reports/workflow.js';
import { openEncapsulatedDocument } from '../../../dicomweb/encapsulated-document.js';
import { cutOnError } from '../../../dicomweb/streamed-response.js';
import { instanceReader } from '../../integrity/read-instance.js';
import { IMPLEMENTATION_VERSION_NAME } from '../../dicom/implementation.js';
import { readJson } from '../body.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, errorResponse, GUARDED, idParams, json, media, ok, secured } from '../api-doc.js';

const createBody = z
  .object({
    study_id: z.union([z.number().int().positive(), z.string().min(1).max(64)]),
    analysis_id: z.number().int().positive(),
    include_ai_disclaimer: z.boolean().default(true),
  })
  .strict();

/** The signer's current password: signing is confirmed by re-authentication (not under AUTH_DISABLED). */
const signBody = z.object({ password: z.string().min(1).max(256).optional() }).strict();

const amendBody = z.object({ reason: z.string().trim().min(1).max(2000), changes: bodyPatch.optional() }).strict();
const versionQuery = z.object({ version: z.coerce.number().int().positive().optional() });

const messages: Record<string, string> = {
  locked: 'too many wrong passwords; try again later',
  password_required: 'signing needs your current password (body: {"password": "..."})',
  wrong_password: 'the password is not correct: the report was not signed',
};

/** The JSON export's schema id: bump it when the shape below changes. */
export const REPORT_JSON_SCHEMA = 'https://radiant-ai.local/schemas/report/v1';

export function reportView(r: Report): Record<string, unknown> {
  const b = r.body;
  return {
    id: r.id,
    study_instance_uid: r.studyInstanceUid,
    analysis_id: r.analysisId,
    state: r.state,
    version: r.version,
    ai_draft: r.state === 'draft' || r.state === 'preliminary',
    include_ai_disclaimer: r.includeAiDisclaimer,
    clinical_indication: b.clinicalIndication,
    technique: b.technique,
    findings: b.findings.map((f) => ({
      number: f.number,
      tracking_uid: f.trackingUid,
      description: f.description,
      anatomical_location: f.anatomicalLocation,
      laterality: f.laterality,
      category: f.category,
      severity: f.severity,
      confidence: f.confidence,
      author: f.author,
      decision: f.decision ?? null,
      decision_reason: f.decisionReason ?? null,
      image_indices: f.imageIndices,
      region: f.region,
      recommendation: f.recommendation,
    })),
    measurements: b.measurements.map((m) => ({ finding_number: m.findingNumber, quantity: m.quantity, value: m.value, unit: m.unit })),
    impression: b.impression,
    comparison: b.comparison,
    limitations: b.limitations,
    created_by: r.createdBy,
    signed_by: r.signedBy,
    signer_name: r.signerName,
    signed_at: r.signedAt,
    dicom: {
      sr: r.srSopInstanceUid && { sop_instance_uid: r.srSopInstanceUid, series_instance_uid: r.srSeriesInstanceUid },
      pdf: r.pdfSopInstanceUid && { sop_instance_uid: r.pdfSopInstanceUid, series_instance_uid: r.pdfSeriesInstanceUid },
    },
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  };
}

/**
 * /api/reports: reports built on AI analyses, their review (edit, sign, amend) and exports.
 * Reading needs images:read; creating a draft analysis:run; editing, signing and amending
 * reports:sign, and signing or amending a radiologist's role.
 */
export function registerReportRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const { db, security } = deps;
  const wf: WorkflowDeps = workflowDeps(deps);
  // Wrong signing passwords count like failed logins: a stolen token must not make a password oracle.
  const signFailures = new FailureLimiter(deps.config.auth.loginMaxAttempts, deps.config.auth.loginWindowSeconds * 1000);
  /**
   * A change's answer once its report.publish job is done (the report with its new objects), or
   * after REPORT_PUBLISH_WAIT_MS: 202 with the report and the job still publishing it.
   */
  const answerPublished = async (ctx: AppContext, reportId: number, ticket: PublishTicket, doneStatus: number) => {
    const out = await awaitPublished(wf, reportId, ticket, deps.config.analysis.publishWaitMs);
    ctx.status = out.done ? doneStatus : 202;
    ctx.body = out.done
      ? reportView(out.report)
      : {
          ...reportView(out.report),
          publishing: {
            job_id: ticket.jobId,
            version: ticket.version,
            sr_sop_instance_uid: ticket.srSopInstanceUid,
            pdf_sop_instance_uid: ticket.pdfSopInstanceUid,
          },
        };
  };
  const actor = (ctx: AppContext): Actor => {
    const p = ctx.state.principal;
    if (!p) throw new HttpError(401, 'unauthenticated', 'authentication required');
    return { username: p.username, role: p.role, userId: p.userId };
  };
  const load = async (ctx: AppContext): Promise<Report> => {
    const rep = await getReport(db, parsePk(ctx.params.id, 'report'));
    if (!rep) throw new HttpError(404, 'not_found', 'report not found');
    ctx.state.audit = { resourceId: String(rep.id), studyInstanceUid: rep.studyInstanceUid };
    return rep;
  };

  r.post('/api/reports', security.guard('analysis:run', 'report.request', 'report'), async (ctx: AppContext) => {
    const body = await readJson(ctx, createBody);
    const ref = parseStudyRef(String(body.study_id));
    const study = await studyIdentity(db, ref);
    if (!study) throw new HttpError(404, 'not_found', 'study not found');
    const out = await createReport(
      wf,
      { studyInstanceUid: study.studyInstanceUid, analysisId: body.analysis_id, includeAiDisclaimer: body.include_ai_disclaimer },
      actor(ctx),
    );
    ctx.state.audit = {
      resourceId: String(out.report.id),
      studyInstanceUid: study.studyInstanceUid,
      details: { analysis: body.analysis_id },
    };
    ctx.set('Location', `${ctx.state.basePath}/api/reports/${out.report.id}`);
    // The analysis already has its report (one per analysis): that one, as it is.
    if (!out.publish) ctx.body = reportView(out.report);
    else await answerPublished(ctx, out.report.id, out.publish, 201);
  });

  r.get('/api/reports/:id', security.guard('images:read', 'report.read', 'report'), async (ctx: AppContext) => {
    const rep = await load(ctx);
    ctx.body = {
      ...reportView(rep),
      versions: (await listVersions(db, rep.id)).map((v) => ({
        version: v.version,
        state: v.state,
        action: v.action,
        changed_by: v.changedBy,
        changed_at: v.changedAt,
        changes: v.changes,
        reason: v.reason,
        sr_sop_instance_uid: v.srSopInstanceUid,
        pdf_sop_instance_uid: v.pdfSopInstanceUid,
      })),
    };
  });

  r.patch('/api/reports/:id', security.guard('reports:sign', 'report.edit', 'report'), async (ctx: AppContext) => {
    const rep = await load(ctx);
    const patch = await readJson(ctx, bodyPatch);
    const { version } = versionQuery.parse(ctx.query);
    ctx.body = reportView(await editReport(wf, rep.id, patch, actor(ctx), version));
  });

  r.post('/api/reports/:id/sign', security.guard('reports:sign', 'report.sign', 'report'), async (ctx: AppContext) => {
    const rep = await load(ctx);
    const { version } = versionQuery.parse(ctx.query);
    const body = await readJson(ctx, signBody);
    const by = actor(ctx);
    await confirmSigner(ctx, by, body.password);
    const out = await signReport(wf, rep.id, by, version);
    await answerPublished(ctx, rep.id, out.publish, 200);
  });

  /** The signer's password, checked (403 reauthentication_failed, audited with the reason); AUTH_DISABLED signs without one. */
  async function confirmSigner(ctx: AppContext, by: Actor, password: string | undefined): Promise<void> {
    const audit = (ctx.state.audit ??= {});
    if (deps.config.auth.disabled) {
      deps.log.warn({ report: audit.resourceId, user: by.username }, 'AUTH_DISABLED: signing without password confirmation');
      audit.details = { ...audit.details, reauthentication: 'skipped (AUTH_DISABLED)' };
      return;
    }
    const key = `sign:${by.username}`;
    const refuse = (reason: string, headers?: Record<string, string>) => {
      audit.details = { ...audit.details, reauthentication: 'failed', reason };
      return new HttpError(reason === 'locked' ? 429 : 403, 'reauthentication_failed', messages[reason] ?? reason, undefined, headers);
    };
    const wait = signFailures.retryAfter(key);
    if (wait > 0) throw refuse('locked', { 'Retry-After': String(wait) });
    if (!password) throw refuse('password_required');
    if (!(await confirmPassword(db, by.username, password))) {
      signFailures.fail(key);
      throw refuse('wrong_password');
    }
    signFailures.reset(key);
    audit.details = { ...audit.details, reauthentication: 'password' };
  }

  r.post('/api/reports/:id/amend', security.guard('reports:sign', 'report.amend', 'report'), async (ctx: AppContext) => {
    const rep = await load(ctx);
    const body = await readJson(ctx, amendBody);
    const out = await amendReport(wf, rep.id, body.reason, body.changes, actor(ctx));
    await answerPublished(ctx, rep.id, out.publish, 200);
  });

  // Exports take a patient's report off the node: their rows are written before they run.
  const canExport = (action: string) => security.guard('images:read', action, 'report', { started: true });
  r.get('/api/export/report/:id/pdf', canExport('report.export.pdf'), async (ctx: AppContext) => {
    const rep = await load(ctx);
    const row = rep.pdfSopInstanceUid ? await findInstance(db, rep.pdfSopInstanceUid) : undefined;
    if (!row) throw new HttpError(404, 'not_found', 'the report has no stored PDF');
    const doc = await openEncapsulatedDocument(deps, row);
    ctx.set('Content-Type', 'application/pdf');
    ctx.set('Content-Disposition', `attachment; filename="report-${rep.id}-v${rep.version}.pdf"`);
    ctx.length = doc.length;
    ctx.body = doc.body;
  });

  r.get('/api/export/report/:id/dicom-sr', canExport('report.export.sr'), async (ctx: AppContext) => {
    const rep = await load(ctx);
    const row = rep.srSopInstanceUid ? await findInstance(db, rep.srSopInstanceUid) : undefined;
    if (!row) throw new HttpError(404, 'not_found', 'the report has no stored SR');
    ctx.set('Content-Type', 'application/dicom');
    ctx.set('Content-Disposition', `attachment; filename="report-${rep.id}-v${rep.version}-sr.dcm"`);
    ctx.length = row.size_bytes;
    // Checked against the index's SHA-256 as it flows: a damaged SR is cut off, never complete.
    ctx.body = cutOnError(ctx, await instanceReader(deps).open(row));
  });

  r.get('/api/export/report/:id/json', canExport('report.export.json'), async (ctx: AppContext) => {
    const rep = await load(ctx);
    const analysis = await getAnalysis(db, rep.analysisId);
    if (!analysis) throw new HttpError(404, 'not_found', 'the analysis of this report is gone');
    const content = await reportContentOf(deps, rep, analysis);
    ctx.set('Content-Disposition', `attachment; filename="report-${rep.id}-v${rep.version}.json"`);
    ctx.type = 'application/json';
    ctx.body = { schema: REPORT_JSON_SCHEMA, report: reportView(rep), content, versions: await listVersions(db, rep.id) };
  });
}

/** The report's content as its published objects hold it (the JSON export, the review's key images). */
export function reportContentOf(deps: RouteDeps, rep: Report, analysis: Analysis): Promise<ReportContent> {
  return buildContent(deps.db, analysis, rep.body, {
    reportId: rep.id,
    version: rep.version,
    state: rep.state,
    includeDisclaimer: rep.includeAiDisclaimer,
    signer:
      rep.signedBy && rep.signedAt
        ? {
            username: rep.signedBy,
            name: rep.signerName ?? rep.signedBy,
            display: personDisplayName(rep.signerName ?? rep.signedBy),
            organization: deps.config.institutionName ?? 'RadiantAI node',
            at: rep.signedAt,
          }
        : null,
    amendmentReason: null,
    predecessors: currentObjects(rep),
    createdAt: rep.updatedAt,
    node: {
      aeTitle: deps.config.dicom.aeTitle,
      institutionName: deps.config.institutionName,
      softwareVersion: IMPLEMENTATION_VERSION_NAME,
      manufacturer: 'RadiantAI',
    },
  });
}

const PUBLISHING =
  'Saved; its report.publish job had not finished within REPORT_PUBLISH_WAIT_MS: the report with `publishing` ' +
  '{job_id, version, sr_sop_instance_uid, pdf_sop_instance_uid} (the objects to come)';
const reportErrors = { 400: E[400], ...GUARDED, 404: E[404] };
const reportObject = { type: 'object' } as const;
const reportParams = idParams('report');
documentRoutes(
  secured('analysis:run', {
    method: 'post',
    path: '/api/reports',
    tags: ['reports'],
    summary:
      'Create the draft report of a finished analysis and publish it (SR + Encapsulated PDF); an analysis has one report: ' +
      'when it has one already, 200 with that one',
    request: { body: { required: true, content: json(createBody) } },
    responses: {
      201: ok('Created and published', reportObject),
      200: ok('The report the analysis already has', reportObject),
      202: ok(PUBLISHING, reportObject),
      ...reportErrors,
      409: E[409],
    },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/reports/{id}',
    tags: ['reports'],
    summary: 'A report with its versions',
    request: { params: reportParams },
    responses: { 200: ok('The report', reportObject), ...reportErrors },
  }),
  secured('reports:sign', {
    method: 'patch',
    path: '/api/reports/{id}',
    tags: ['reports'],
    summary: 'Edit a draft or preliminary report; ?version=N refuses a stale edit',
    request: { params: reportParams, query: versionQuery, body: { required: true, content: json(bodyPatch) } },
    responses: { 200: ok('The report', reportObject), ...reportErrors, 409: E[409], 422: E[422] },
  }),
  secured('reports:sign', {
    method: 'post',
    path: '/api/reports/{id}/sign',
    tags: ['reports'],
    summary:
      "Sign (radiologists only), confirmed by the signer's current password: final, VERIFIED SR and final PDF published. " +
      'A missing or wrong password: 403 reauthentication_failed (audited); repeated failures: 429 with Retry-After. ' +
      'Under AUTH_DISABLED no password is asked (logged)',
    request: { params: reportParams, query: versionQuery, body: { required: true, content: json(signBody) } },
    responses: {
      200: ok('The report, published', reportObject),
      202: ok(PUBLISHING, reportObject),
      ...reportErrors,
      409: E[409],
      429: errorResponse('Too many wrong passwords (Retry-After)'),
    },
  }),
  secured('reports:sign', {
    method: 'post',
    path: '/api/reports/{id}/amend',
    tags: ['reports'],
    summary: 'Amend a signed report (radiologists only)',
    request: { params: reportParams, body: { required: true, content: json(amendBody) } },
    responses: {
      200: ok('The report, published', reportObject),
      202: ok(PUBLISHING, reportObject),
      ...reportErrors,
      409: E[409],
      422: E[422],
    },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/export/report/{id}/pdf',
    tags: ['reports'],
    summary: 'The published PDF',
    request: { params: reportParams },
    responses: { 200: media('PDF', ['application/pdf']), ...reportErrors },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/export/report/{id}/json',
    tags: ['reports'],
    summary: `The report as JSON (schema ${REPORT_JSON_SCHEMA})`,
    request: { params: reportParams },
    responses: { 200: ok('{schema, report, content, versions}', reportObject), ...reportErrors },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/export/report/{id}/dicom-sr',
    tags: ['reports'],
    summary: 'The published SR, Part 10',
    request: { params: reportParams },
    responses: { 200: media('DICOM', ['application/dicom']), ...reportErrors },
  }),
);
