import type { RouterInstance } from '@koa/router';
import fsp from 'node:fs/promises';
import { parseAutoRules } from '../../config.js';
import { databaseSize, indexFigures } from '../../catalog/figures.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, GUARDED, ok, secured } from '../api-doc.js';

/**
 * The administration's read-only views of the node's set-up (nodes:manage):
 * GET /api/settings/auto-analysis, the effective AUTO_ANALYZE / AUTO_ANALYZE_RULES / AUTO_PUBLISH
 * (set in the environment; changing them means restarting the node), and GET /api/system/storage,
 * the index's counts and bytes, the storage backend (free disk for local storage), the database.
 */
export function registerSystemRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const guard = (action: string) => deps.security.guard('nodes:manage', action, 'system');
  const { analysis, medgemma } = deps.config;

  r.get('/api/settings/auto-analysis', guard('settings.read'), (ctx: AppContext) => {
    ctx.body = {
      auto_analyze: analysis.autoAnalyze,
      // Checked at start-up (a bad AUTO_ANALYZE_RULES stops the node), so this parses.
      rules: analysis.autoAnalyze === 'rules' ? parseAutoRules(analysis.autoRules) : null,
      auto_publish: analysis.autoPublish,
      stable_seconds: analysis.stableSeconds,
      max_slices: analysis.maxSlices,
      allow_unvalidated_model: medgemma.allowUnvalidatedModel,
      engine_backend: medgemma.backend,
      editable: false,
      note: 'Set by the environment (AUTO_ANALYZE, AUTO_ANALYZE_RULES, AUTO_PUBLISH); a change takes effect when the node restarts.',
    };
  });

  r.get('/api/system/storage', guard('system.storage'), async (ctx: AppContext) => {
    const s = deps.config.storage;
    let free: { free_bytes: number; total_bytes: number } | null = null;
    if (s.type === 'local') {
      const fs = await fsp.statfs(s.root).catch(() => undefined);
      if (fs) free = { free_bytes: fs.bavail * fs.bsize, total_bytes: fs.blocks * fs.bsize };
    }
    ctx.body = {
      index: await indexFigures(deps.db),
      storage: {
        backend: s.type,
        ...(s.type === 'local' ? { root: s.root } : s.type === 's3' ? { bucket: s.bucket } : { container: s.container }),
        disk: free,
      },
      database: await databaseSize(deps.db),
    };
  });
}

documentRoutes(
  secured('nodes:manage', {
    method: 'get',
    path: '/api/settings/auto-analysis',
    tags: ['system'],
    summary:
      'The effective auto-analysis configuration (AUTO_ANALYZE, AUTO_ANALYZE_RULES parsed, AUTO_PUBLISH), read-only: it is set ' +
      'in the environment and changes with a restart',
    responses: { 200: ok('The settings', { type: 'object' }), ...GUARDED },
  }),
  secured('nodes:manage', {
    method: 'get',
    path: '/api/system/storage',
    tags: ['system'],
    summary:
      'Storage and database figures: patient/study/series/instance counts and bytes stored (by the index), the storage backend ' +
      '(free and total disk for local storage), the database dialect and size',
    responses: { 200: ok('{index, storage, database}', { type: 'object' }), ...GUARDED },
  }),
);
