import type { RouterInstance } from '@koa/router';
import { listStudiesQuery, parseStudyRef } from '../../records/schemas.js';
import { getStudy, listStudies } from '../../records/studies.js';
import { returnedIdentifiers } from '../../audit/audit.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, ok, ref, secured, studyRefParams } from '../api-doc.js';

/** /api/studies: list with filters and paging, one study with its series. */
export function registerStudyRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const { security, db } = deps;

  r.get('/api/studies', security.guard('images:read', 'study.list', 'study'), async (ctx: AppContext) => {
    const q = listStudiesQuery.parse(ctx.query);
    const { total, items, next_cursor } = await listStudies(db, q);
    const returned = returnedIdentifiers(items.map((i) => ({ studyInstanceUid: i.study_instance_uid, patientId: i.patient.patient_id })));
    ctx.state.audit = {
      patientId: q.patient_id ?? returned.patientId,
      studyInstanceUid: returned.studyInstanceUid,
      details: { returned: items.length, total, ...returned.details },
    };
    ctx.body = { total, limit: q.limit, offset: q.cursor ? 0 : q.offset, items, next_cursor };
  });

  r.get('/api/studies/:id', security.guard('images:read', 'study.read', 'study'), async (ctx: AppContext) => {
    const ref = parseStudyRef(ctx.params.id);
    const study = await getStudy(db, ref);
    if (!study) throw new HttpError(404, 'not_found', 'study not found');
    ctx.state.audit = { resourceId: String(study.id), studyInstanceUid: study.study_instance_uid, patientId: study.patient.patient_id };
    ctx.body = study;
  });
}

documentRoutes(
  secured('images:read', {
    method: 'get',
    path: '/api/studies',
    tags: ['studies'],
    summary: 'List studies',
    operationId: 'listStudies',
    request: { query: listStudiesQuery },
    responses: { 200: ok('A page of studies', ref('StudyList')), 400: E[400], ...GUARDED },
  }),
  secured('images:read', {
    method: 'get',
    path: '/api/studies/{id}',
    tags: ['studies'],
    summary: 'Get a study with its series',
    operationId: 'getStudy',
    request: { params: studyRefParams },
    responses: { 200: ok('The study', ref('StudyDetail')), 400: E[400], ...GUARDED, 404: E[404] },
  }),
);
