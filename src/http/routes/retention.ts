import type { RouterInstance } from '@koa/router';
import { z } from 'zod';
import { previewRetention } from '../../retention/retention.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, ok, secured } from '../api-doc.js';

const previewQuery = z.object({
  limit: z.coerce.number().int().min(1).max(10_000).default(500).describe('studies listed at most per rule'),
});

/**
 * GET /api/retention/preview (nodes:manage, audited as retention.preview): the dry run of
 * RETENTION_RULES now: every study a run would delete, with the rule and why, and the ones a rule
 * selects but keeps (unsigned AI drafts). Deletes nothing. The rules themselves are configuration
 * (RETENTION_RULES), listed here as the node reads them.
 */
export function registerRetentionRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  r.get('/api/retention/preview', deps.security.guard('nodes:manage', 'retention.preview', 'study'), async (ctx: AppContext) => {
    const q = previewQuery.parse(ctx.query);
    const { rules, maxStudiesPerRun, intervalMs } = deps.config.retention;
    const items = await previewRetention(deps, rules, { limit: q.limit });
    const toDelete = items.filter((i) => i.action === 'delete').length;
    ctx.state.audit = { details: { rules: rules.length, delete: toDelete, keep: items.length - toDelete } };
    ctx.body = {
      rules,
      interval_minutes: intervalMs / 60_000,
      max_studies_per_run: maxStudiesPerRun,
      counts: { delete: toDelete, keep: items.length - toDelete },
      items,
    };
  });
}

documentRoutes(
  secured('nodes:manage', {
    method: 'get',
    path: '/api/retention/preview',
    tags: ['retention'],
    summary:
      'Dry run of the retention rules (RETENTION_RULES): the studies a run would delete now, with the rule and the reason, ' +
      'and those a rule selects but keeps (unsigned AI drafts without deleteUnsignedDrafts). Deletes nothing',
    request: { query: previewQuery },
    responses: { 200: ok('{rules, interval_minutes, max_studies_per_run, counts, items}', { type: 'object' }), 400: E[400], ...GUARDED },
  }),
);
