import { api, ApiError, authHeaders, endSession } from './client';

/**
 * The study review's reads and writes (src/http/routes/reports.ts, report-review.ts). Images and
 * downloads are fetched with the Authorization header and handed to the page as blobs: no token
 * ever goes into a URL.
 */

export interface FlagView {
  rule: string;
  target: unknown;
  blocking: boolean;
}

export interface ReportSummary {
  id: number;
  analysis_id: number;
  status: 'draft' | 'signed' | 'amended';
  state: string;
  version: number;
  ai_draft: boolean;
  author: { username: string; display_name: string } | null;
  created_at: string;
  signer: { username: string; display_name: string; signed_at: string | null } | null;
  updated_at: string;
  findings: number;
  safety_flags: FlagView[];
  blocking: boolean;
  model: { name: string; sha256: string | null; validated: boolean } | null;
}

export interface FindingView {
  number: number;
  tracking_uid: string;
  description: string;
  anatomical_location: string | null;
  laterality: string | null;
  category: string | null;
  severity: string | null;
  confidence: number | null;
  author: 'ai' | 'radiologist';
  image_indices: number[];
  region: { image_index: number; box: number[]; space: string } | null;
  recommendation: string | null;
  decision: 'accepted' | 'rejected' | 'edited' | null;
  decision_reason: string | null;
  flags: FlagView[];
}

export interface VersionView {
  version: number;
  state: string;
  status: string;
  action: string;
  changed_by: string | null;
  changed_by_name: string | null;
  changed_at: string;
  reason: string | null;
  content: {
    clinical_indication: string | null;
    technique: string;
    findings: FindingView[];
    impression: string;
    comparison: string | null;
    limitations: string | null;
  };
}

export interface VersionDiff {
  from: number;
  to: number;
  added: Array<{ tracking_uid: string; number: number; description: string }>;
  removed: Array<{ tracking_uid: string; number: number; description: string }>;
  changed: Array<{ tracking_uid: string; from_number: number; to_number: number; fields: Record<string, { from: unknown; to: unknown }> }>;
  impression: { from: string; to: string } | null;
}

export interface ViewerLink {
  viewer_path: string;
  slice_number: number | null;
  slice_count: number | null;
  caption: string;
}

export const reportsOfStudy = (studyId: number) =>
  api<{ study_instance_uid: string; items: ReportSummary[] }>(`/api/reports?study_id=${studyId}`);
export const versionsOf = (reportId: number) =>
  api<{ report_id: number; current: number; items: VersionView[] }>(`/api/reports/${reportId}/versions`);
export const diffOf = (reportId: number, from: number, to: number) =>
  api<VersionDiff>(`/api/reports/${reportId}/diff?from=${from}&to=${to}`);
export const viewerLinkOf = (reportId: number, finding: number) =>
  api<ViewerLink>(`/api/reports/${reportId}/findings/${finding}/viewer-link`);

const jsonBody = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify(body),
});

/** An edit of a draft; `version` makes the node refuse it (409) when someone changed the report meanwhile. */
export const patchReport = (reportId: number, version: number, patch: Record<string, unknown>) =>
  api<unknown>(`/api/reports/${reportId}?version=${version}`, jsonBody('PATCH', patch));

export const signReport = (reportId: number, version: number, password: string | undefined) =>
  api<unknown>(`/api/reports/${reportId}/sign?version=${version}`, jsonBody('POST', password === undefined ? {} : { password }));

export const draftReport = (studyId: number, analysisId: number) =>
  api<{ id: number }>('/api/reports', jsonBody('POST', { study_id: studyId, analysis_id: analysisId }));

/** A binary answer (a key image, an export) read with the token in the header. */
export async function fetchBlob(path: string): Promise<{ blob: Blob; headers: Headers }> {
  const res = await fetch(path, { credentials: 'omit', cache: 'no-store', headers: authHeaders() });
  if (res.status === 401) endSession('unauthorized');
  if (!res.ok) {
    let code = 'error';
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: { code?: string; message?: string } };
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(res.status, code, message);
  }
  return { blob: await res.blob(), headers: res.headers };
}

/** Saves an export: fetched with the header, then handed to the browser as a blob download. */
export async function download(path: string, fallbackName: string): Promise<void> {
  const { blob, headers } = await fetchBlob(path);
  const name = /filename="([^"]+)"/.exec(headers.get('Content-Disposition') ?? '')?.[1] ?? fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
  // The browser has taken the blob once the click is dispatched; free it a little later.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
