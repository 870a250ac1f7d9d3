import Router from '@koa/router';
import { z } from 'zod';
import type { AuditLog, AuditRow } from '../../audit/audit.js';
import { auditMessagesDocument, type AuditSource } from '../../audit/dicom-audit.js';
import { toCsv } from '../csv.js';
import { HttpError } from '../errors.js';
import type { Security } from '../security.js';
import type { AppRouter, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, ref, secured } from '../api-doc.js';

const querySchema = z.object({
  user: z.string().max(64).optional(),
  patient_id: z.string().max(64).optional(),
  study: z.string().max(64).optional(),
  action: z.string().max(64).optional(),
  outcome: z.enum(['success', 'failure', 'started']).optional(),
  from: z.string().max(40).optional(),
  to: z.string().max(40).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(100).describe('At most 1000 as JSON, 10 000 as CSV or DICOM XML'),
  offset: z.coerce.number().int().min(0).default(0),
  format: z.enum(['json', 'csv', 'dicom-xml']).default('json'),
});

const CSV_COLUMNS = [
  'id',
  'at',
  'actorType',
  'actor',
  'peer',
  'action',
  'resourceType',
  'resourceId',
  'patientId',
  'studyInstanceUid',
  'outcome',
  'status',
  'details',
  'model',
  'promptHash',
] as const;

export function auditRoutes(deps: { audit: AuditLog; security: Security; source: AuditSource }): AppRouter {
  const r = new Router<AppState>({ prefix: '/api/audit' });
  r.get('/', deps.security.guard('audit:read', 'audit.read', 'audit'), async (ctx) => {
    const q = querySchema.parse(ctx.query);
    if (q.format === 'json' && q.limit > 1000) throw new HttpError(400, 'invalid_request', 'limit: at most 1000 as JSON (10 000 as CSV)');
    const { total, rows } = await deps.audit.query({
      user: q.user,
      patientId: q.patient_id,
      studyInstanceUid: q.study,
      action: q.action,
      outcome: q.outcome,
      from: q.from,
      to: q.to,
      limit: q.limit,
      offset: q.offset,
    });
    if (q.format === 'csv') {
      ctx.type = 'text/csv; charset=utf-8';
      ctx.set('Content-Disposition', 'attachment; filename="audit.csv"');
      ctx.set('X-Total-Count', String(total));
      ctx.body = toCsv<AuditRow>(CSV_COLUMNS, rows);
    } else if (q.format === 'dicom-xml') {
      // PS3.15 A.5 audit messages (src/audit/dicom-audit.ts), one AuditMessage per row.
      ctx.type = 'application/xml; charset=utf-8';
      ctx.set('Content-Disposition', 'attachment; filename="audit.xml"');
      ctx.set('X-Total-Count', String(total));
      ctx.body = auditMessagesDocument(rows, deps.source);
    } else ctx.body = { total, limit: q.limit, offset: q.offset, items: rows };
  });
  return r;
}

documentRoutes(
  secured('audit:read', {
    method: 'get',
    path: '/api/audit',
    tags: ['audit'],
    summary:
      'Query the audit trail, newest first: by user, action, outcome, patient, study and time; format=csv exports the page as CSV ' +
      '(X-Total-Count: how many match); format=dicom-xml as DICOM PS3.15 A.5 audit messages in an <AuditMessages> list',
    request: { query: querySchema },
    responses: {
      200: {
        description: 'A page of audit rows (JSON) or CSV',
        content: {
          'application/json': { schema: ref('AuditList') },
          'text/csv': { schema: { type: 'string' } },
          'application/xml': { schema: { type: 'string' } },
        },
      },
      400: E[400],
      ...GUARDED,
    },
  }),
);
