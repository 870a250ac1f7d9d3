import path from 'node:path';
import { Readable } from 'node:stream';
import { findInstance, type StoredInstanceRow } from '../../src/catalog/catalog.js';
import { corpusRoot } from './corpus.js';
import type { GeneratedFile } from '../../fixtures/generate.js';
import type { IngestResult } from '../../src/ingest/ingest.js';
import { baseUrl, bearer } from './http.js';
import type { TestNode } from './node.js';

/** Small JSON client for the application API of a test node. */
export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface ApiClient {
  get<T = any>(path: string): Promise<ApiResponse<T>>;
  post<T = any>(path: string, body: unknown): Promise<ApiResponse<T>>;
  patch<T = any>(path: string, body: unknown): Promise<ApiResponse<T>>;
  put<T = any>(path: string, body: unknown): Promise<ApiResponse<T>>;
  del<T = any>(path: string): Promise<ApiResponse<T>>;
  raw(path: string, init?: RequestInit): Promise<Response>;
}

export function apiClient(node: TestNode, token?: string): ApiClient {
  const url = baseUrl(node);
  const auth = token ? bearer(token) : {};
  const call = async <T>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  };
  return {
    get: (p) => call('GET', p),
    post: (p, b) => call('POST', p, b),
    patch: (p, b) => call('PATCH', p, b),
    put: (p, b) => call('PUT', p, b),
    del: (p) => call('DELETE', p),
    raw: (p, init = {}) => fetch(`${url}${p}`, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } }),
  };
}

/** Ingest generated files through the node's one ingest path (as an import would). */
export async function ingestFiles(node: TestNode, files: Iterable<GeneratedFile>): Promise<IngestResult[]> {
  const out: IngestResult[] = [];
  for (const f of files) out.push(await node.ingestor.ingestStream(Readable.from([f.bytes]), { source: 'import' }));
  return out;
}

/** A multipart/form-data body built with the global FormData, as a browser would send it. */
export function uploadForm(parts: {
  patientId?: string;
  files: Array<{ name: string; bytes: Uint8Array | string; type?: string }>;
}): FormData {
  const form = new FormData();
  if (parts.patientId !== undefined) form.append('patient_id', parts.patientId);
  for (const f of parts.files) {
    const data = typeof f.bytes === 'string' ? f.bytes : new Uint8Array(f.bytes);
    form.append('files', new Blob([data], { type: f.type ?? 'application/dicom' }), f.name);
  }
  return form;
}

interface AuditRow {
  action: string;
  actor: string | null;
  peer: string | null;
  outcome: string;
  status: number | null;
  patient_id: string | null;
  study_instance_uid: string | null;
  resource_id: string | null;
  details: string | null;
  model: string | null;
  prompt_hash: string | null;
}

export async function auditRows(node: TestNode, action: string): Promise<AuditRow[]> {
  // The rows of reads are committed shortly after their answers (AuditLog.record).
  await node.audit.flush();
  return (await node.db('audit_logs').where({ action }).orderBy('id')) as AuditRow[];
}

/** Imports corpus files (paths relative to RADIANT_CORPUS) and returns each one's index row by name. */
export async function ingestCorpusFiles<K extends string>(node: TestNode, files: Record<K, string>): Promise<Record<K, StoredInstanceRow>> {
  const out = {} as Record<K, StoredInstanceRow>;
  for (const [name, rel] of Object.entries(files) as Array<[K, string]>) {
    const r = await node.ingestor.ingestFile(path.join(corpusRoot, rel), false, { source: 'import' });
    out[name] = (await findInstance(node.db, r.sopInstanceUid))!;
  }
  return out;
}
