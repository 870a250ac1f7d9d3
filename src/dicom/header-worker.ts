import { parentPort } from 'node:worker_threads';
import { parseHeaderFile } from './header.js';
import type { ParseOutcome } from './header-types.js';
import { serveWorker } from '../workers/worker-pool.js';

export interface ParseRequest {
  path: string;
  maxHeaderBytes: number;
}

serveWorker<ParseRequest, ParseOutcome>(
  parentPort!,
  async (req) => ({ result: await parseHeaderFile(req.path, req.maxHeaderBytes) }),
  (err) => ({ ok: false, kind: 'unparseable', error: `cannot parse DICOM: ${String(err)}` }),
);
