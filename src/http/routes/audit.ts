import Router from '@koa/router';
import { z } from 'zod';
import type { AuditLog } from '../../audit/audit.js';
import type { Security } from '../security.js';
import type { AppRouter, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, ok, ref, secured } from '../api-doc.js';

const querySchema = z.object({
  user: z.string().max(64).optional(),
  patient_id: z.string().max(64).optional(),
  study: z.string().max(64).optional(),
  action: z.string().max(64).optional(),
  from: z.string().max(40).optional(),
  to: z.string().max(40).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});

export function auditRoutes(deps: { audit: AuditLog; security: Security }): AppRouter {
  const r = new Router<AppState>({ prefix: '/api/audit' });
  r.get('/', deps.security.guard('audit:read', 'audit.read', 'audit'), async (ctx) => {
    const q = querySchema.parse(ctx.query);
    const { total, rows } = await deps.audit.query({
      user: q.user,
      patientId: q.patient_id,
      studyInstanceUid: q.study,
      action: q.action,
      from: q.from,
      to: q.to,
      limit: q.limit,
      offset: q.offset,
    });
    ctx.body = { total, limit: q.limit, offset: q.offset, items: rows };
  });
  return r;
}

documentRoutes(
  secured('audit:read', {
    method: 'get',
    path: '/api/audit',
    tags: ['audit'],
    summary: 'Query the audit trail, newest first',
    request: { query: querySchema },
    responses: { 200: ok('A page of audit rows', ref('AuditList')), 400: E[400], ...GUARDED },
  }),
);
