import { apiClient } from './api.js';
import { fakeEndpoint, okReply } from './fake-openai.js';
import { noduleAnswer } from './ai-results.js';
import { tokenFor } from './http.js';
import type { TestNode } from './node.js';
import { until } from './until.js';

/** The env of a node whose engine is a stand-in endpoint at `url` (the remote backend's real client). */
export function standInEngineEnv(url: string): Record<string, string> {
  return {
    MEDGEMMA_BACKEND: 'remote',
    MEDGEMMA_API_ENDPOINT: url,
    MEDGEMMA_ALLOW_UNVALIDATED_MODEL: 'true',
    MEDGEMMA_MAX_SLICES: '5',
    ANALYSIS_IMAGE_SIZE: '128',
    JOB_POLL_MS: '100',
  };
}

/** A stand-in model that finds one nodule on every study it is shown. */
export function noduleEndpoint(): ReturnType<typeof fakeEndpoint> {
  return fakeEndpoint((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(okReply(JSON.stringify(noduleAnswer([300, 300, 600, 600]))));
    });
  });
}

/**
 * Runs a manual analysis of `study` through the API and makes its report (an unsigned AI draft,
 * published as SR and PDF); answers the report's id and analysis id.
 */
export async function draftReportOf(node: TestNode, study: string): Promise<{ reportId: number; analysisId: number }> {
  const api = apiClient(node, await tokenFor(node, 'admin'));
  const req = await api.post<{ id: number }>('/api/analysis', { study_id: study });
  if (req.status !== 202) throw new Error(`analysis request: ${req.status} ${JSON.stringify(req.body)}`);
  const analysisId = req.body.id;
  await until(`analysis ${analysisId}`, async () => {
    const a = await api.get<{ status: string; error: string | null }>(`/api/analysis/${analysisId}`);
    if (a.body.status === 'failed') throw new Error(`analysis failed: ${a.body.error}`);
    return a.body.status === 'succeeded' ? true : undefined;
  });
  const rep = await api.post<{ id: number }>('/api/reports', { study_id: study, analysis_id: analysisId });
  if (rep.status !== 201 && rep.status !== 200) throw new Error(`report: ${rep.status} ${JSON.stringify(rep.body)}`);
  return { reportId: rep.body.id, analysisId };
}
