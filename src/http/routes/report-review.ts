import type { RouterInstance } from '@koa/router';
import { z } from 'zod';
import { parsePk, parseStudyRef } from '../../records/schemas.js';
import { getAnalysis } from '../../analysis/analyses.js';
import { studyIdentity } from '../../catalog/studies.js';
import { keyImagesFor } from '../../reports/key-images.js';
import { getReport, getVersion, listVersions, reportsChangedBetween, reportsOfStudy, type Report } from '../../reports/report-store.js';
import {
  DECISION_COLUMNS,
  decisionsOf,
  diffBodies,
  displayNames,
  reportSummary,
  versionView,
  type DecisionRecord,
} from '../../reports/review.js';
import { reportContentOf } from './reports.js';
import { toCsv } from '../csv.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, idParams, media, ok, secured } from '../api-doc.js';

const studyRef = z.union([z.coerce.number().int().positive(), z.string().regex(/^[0-9.]{1,64}$/)]);
const listQuery = z
  .object({
    study_id: studyRef.optional().describe('Index id of the study or its Study Instance UID'),
    study_uid: z
      .string()
      .regex(/^[0-9.]{1,64}$/)
      .optional()
      .describe('Study Instance UID'),
  })
  .refine((q) => q.study_id !== undefined || q.study_uid !== undefined, 'study_id or study_uid is required');
const versionParams = idParams('report').extend({ version: z.coerce.number().int().min(1).max(100_000) });
const diffQuery = z.object({
  from: z.coerce.number().int().min(1).max(100_000),
  to: z.coerce.number().int().min(1).max(100_000).optional().describe('Default: the current version'),
});
const isoTime = z
  .string()
  .max(40)
  .refine((s) => !Number.isNaN(Date.parse(s)), 'an ISO 8601 date or date-time');
const decisionsQuery = z.object({
  from: isoTime.optional(),
  to: isoTime.optional(),
  format: z.enum(['json', 'csv']).default('json'),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000).describe('Reports read at most'),
});
const findingParams = idParams('report').extend({ number: z.coerce.number().int().min(1).max(1000) });

/**
 * The study-review screen's reads of reports: a study's reports, their versions and the diff
 * between two, the radiologist's per-finding decisions (export), and a finding's key image with
 * the viewer's coordinates of its slice. Every read needs images:read but the decisions export
 * (reports:sign, the reviewers' ground truth); registered before /api/reports/:id.
 */
export function registerReportReviewRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const { db, security } = deps;
  const analysisOf = async (rep: Report) => getAnalysis(db, rep.analysisId);
  const load = async (ctx: AppContext): Promise<Report> => {
    const rep = await getReport(db, parsePk(ctx.params.id, 'report'));
    if (!rep) throw new HttpError(404, 'not_found', 'report not found');
    ctx.state.audit = { resourceId: String(rep.id), studyInstanceUid: rep.studyInstanceUid };
    return rep;
  };

  r.get('/api/reports', security.guard('images:read', 'report.list', 'report'), async (ctx: AppContext) => {
    const q = listQuery.parse(ctx.query);
    const study = await studyIdentity(db, q.study_uid ? { uid: q.study_uid } : parseStudyRef(String(q.study_id)));
    if (!study) throw new HttpError(404, 'not_found', 'study not found');
    ctx.state.audit = { studyInstanceUid: study.studyInstanceUid, patientId: study.patientId };
    const reports = await reportsOfStudy(db, study.studyInstanceUid);
    const names = await displayNames(
      db,
      reports.flatMap((x) => [x.createdBy, x.signedBy]),
    );
    const items = [];
    for (const rep of reports) items.push(reportSummary(rep, await analysisOf(rep), names));
    ctx.body = { study_instance_uid: study.studyInstanceUid, items };
  });

  r.get('/api/reports/decisions', security.guard('reports:sign', 'report.decisions.export', 'report'), async (ctx: AppContext) => {
    const q = decisionsQuery.parse(ctx.query);
    const from = q.from && new Date(q.from).toISOString();
    const to = q.to && new Date(q.to).toISOString();
    const rows: DecisionRecord[] = [];
    const reports = await reportsChangedBetween(db, { from, to, limit: q.limit });
    for (const rep of reports) {
      const records = decisionsOf(rep, await listVersions(db, rep.id), await analysisOf(rep));
      rows.push(...records.filter((d) => (!from || d.decided_at >= from) && (!to || d.decided_at <= to)));
    }
    const studies = [...new Set(rows.map((d) => d.study_instance_uid))];
    ctx.state.audit = {
      studyInstanceUid: studies.length === 1 ? studies[0] : undefined,
      details: { decisions: rows.length, studyCount: studies.length, format: q.format },
    };
    if (q.format === 'csv') {
      ctx.type = 'text/csv; charset=utf-8';
      ctx.set('Content-Disposition', 'attachment; filename="finding-decisions.csv"');
      ctx.body = toCsv(DECISION_COLUMNS, rows);
    } else ctx.body = { items: rows, reports_read: reports.length, truncated: reports.length >= q.limit };
  });

  r.get('/api/reports/:id/versions', security.guard('images:read', 'report.versions', 'report'), async (ctx: AppContext) => {
    const rep = await load(ctx);
    const [versions, analysis] = [await listVersions(db, rep.id), await analysisOf(rep)];
    const names = await displayNames(
      db,
      versions.map((v) => v.changedBy),
    );
    ctx.body = { report_id: rep.id, current: rep.version, items: versions.map((v) => versionView(v, analysis, names)) };
  });

  r.get('/api/reports/:id/versions/:version', security.guard('images:read', 'report.version.read', 'report'), async (ctx: AppContext) => {
    const rep = await load(ctx);
    const { version } = versionParams.parse({ id: rep.id, version: ctx.params.version });
    const v = await getVersion(db, rep.id, version);
    if (!v) throw new HttpError(404, 'not_found', `report ${rep.id} has no version ${version}`);
    ctx.body = { report_id: rep.id, ...versionView(v, await analysisOf(rep), await displayNames(db, [v.changedBy])) };
  });

  r.get('/api/reports/:id/diff', security.guard('images:read', 'report.diff', 'report'), async (ctx: AppContext) => {
    const rep = await load(ctx);
    const q = diffQuery.parse(ctx.query);
    const to = q.to ?? rep.version;
    const [a, b] = [await getVersion(db, rep.id, q.from), await getVersion(db, rep.id, to)];
    if (!a || !b) throw new HttpError(404, 'not_found', `report ${rep.id} has no version ${a ? to : q.from}`);
    ctx.body = { report_id: rep.id, from: q.from, to, ...diffBodies(a.body, b.body) };
  });

  /** The finding's key image as the PDF draws it, and where its slice is in the viewer. */
  const keyImage = async (ctx: AppContext) => {
    const rep = await load(ctx);
    const { number } = findingParams.parse({ id: rep.id, number: ctx.params.number });
    const finding = rep.body.findings.find((f) => f.number === number);
    if (!finding) throw new HttpError(404, 'not_found', `report ${rep.id} has no finding ${number}`);
    const analysis = await analysisOf(rep);
    if (!analysis) throw new HttpError(404, 'not_found', 'the analysis of this report is gone');
    // A rejected finding is left out of the published content; the reviewer still looks at it.
    const all = { ...rep, body: { ...rep.body, findings: rep.body.findings.map((f) => ({ ...f, decision: undefined })) } };
    const content = await reportContentOf(deps, all, analysis);
    const one = content.findings.filter((f) => f.trackingUid === finding.trackingUid);
    const [image] = await keyImagesFor(deps, analysis, { findings: one });
    if (!image) throw new HttpError(404, 'no_key_image', `finding ${number} points at no image of the analysis`);
    return { rep, analysis, image, hasBox: finding.region !== null };
  };

  r.get('/api/reports/:id/findings/:number/key-image', security.guard('images:read', 'report.key_image', 'report'), async (ctx) => {
    const { image } = await keyImage(ctx);
    ctx.type = 'image/png';
    ctx.set('Cache-Control', 'private, no-store');
    if (image.slice) ctx.set('X-Slice-Number', String(image.slice.number));
    ctx.body = image.png;
  });

  r.get('/api/reports/:id/findings/:number/viewer-link', security.guard('images:read', 'report.viewer_link', 'report'), async (ctx) => {
    const { rep, image, hasBox } = await keyImage(ctx);
    ctx.body = viewerLink(rep, image, hasBox);
  });
}

function viewerLink(
  rep: Report,
  image: {
    sopInstanceUid: string;
    seriesInstanceUid: string;
    frameNumber: number;
    slice: { number: number; of: number } | null;
    caption: string;
  },
  hasBox: boolean,
) {
  const q = new URLSearchParams({
    StudyInstanceUIDs: rep.studyInstanceUid,
    initialSeriesInstanceUID: image.seriesInstanceUid,
    initialSOPInstanceUID: image.sopInstanceUid,
  });
  return {
    StudyInstanceUID: rep.studyInstanceUid,
    SeriesInstanceUID: image.seriesInstanceUid,
    SOPInstanceUID: image.sopInstanceUid,
    frame: image.frameNumber,
    slice_number: image.slice?.number ?? null,
    slice_count: image.slice?.of ?? null,
    caption: image.caption,
    has_box: hasBox,
    /** Under the node's base path; OHIF opens the study on that series and image. */
    viewer_path: `/viewer/viewer?${q.toString()}`,
  };
}

const errors = { 400: E[400], ...GUARDED, 404: E[404] };
const obj = { type: 'object' } as const;
documentRoutes(
  secured('images:read', {
    method: 'get',
    path: '/api/reports',
    tags: ['reports'],
    summary:
      "A study's reports: status (draft/signed/amended), version, author and signer (display names, time), safety flags " +
      '(each blocking or not), analysis id and model',
    request: { query: listQuery },
    responses: { 200: ok('{study_instance_uid, items}', obj), ...errors },
  }),
  secured('reports:sign', {
    method: 'get',
    path: '/api/reports/decisions',
    tags: ['reports'],
    summary:
      "The radiologists' accept/reject/edit decisions on model findings, decided in [from, to]: study UID, analysis id, " +
      'model name and SHA-256, finding index, the model text verbatim and the report text, confidence, decision, reason, ' +
      'who and when; JSON or CSV (format=csv). The ground truth of `radiant eval` and quality review',
    request: { query: decisionsQuery },
    responses: {
      200: {
        description: '{items, reports_read, truncated} or CSV',
        content: { 'application/json': { schema: obj }, 'text/csv': { schema: { type: 'string' } } },
      },
      ...errors,
    },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/reports/{id}/versions',
    tags: ['reports'],
    summary: "A report's versions, oldest first, each with who/when/why and its content (findings with flags and decisions)",
    request: { params: idParams('report') },
    responses: { 200: ok('{report_id, current, items}', obj), ...errors },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/reports/{id}/versions/{version}',
    tags: ['reports'],
    summary: 'One version of a report with its content',
    request: { params: versionParams },
    responses: { 200: ok('The version', obj), ...errors },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/reports/{id}/diff',
    tags: ['reports'],
    summary:
      'What changed between two versions: findings added, removed and changed (matched by tracking UID, per field) and the impression',
    request: { params: idParams('report'), query: diffQuery },
    responses: { 200: ok('{from, to, added, removed, changed, impression}', obj), ...errors },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/reports/{id}/findings/{number}/key-image',
    tags: ['reports'],
    summary:
      "A finding's key image as the PDF shows it: PNG, true greyscale, the finding's box drawn; X-Slice-Number: the viewer's " +
      'slice (1-based)',
    request: { params: findingParams },
    responses: { 200: media('PNG', ['image/png']), ...errors },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/reports/{id}/findings/{number}/viewer-link',
    tags: ['reports'],
    summary: "Where a finding's key image is in OHIF: StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, frame, slice number, path",
    request: { params: findingParams },
    responses: { 200: ok('The link data', obj), ...errors },
  }),
);
