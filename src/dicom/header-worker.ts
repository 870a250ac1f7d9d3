import { parentPort } from 'node:worker_threads';
import { parseHeaderFile } from './header.js';
import type { ParseOutcome } from './header-types.js';

export interface ParseRequest {
  id: number;
  path: string;
  maxHeaderBytes: number;
}

export interface ParseReply {
  id: number;
  outcome: ParseOutcome;
}

parentPort!.on('message', (req: ParseRequest) => {
  parseHeaderFile(req.path, req.maxHeaderBytes).then(
    (outcome) => parentPort!.postMessage({ id: req.id, outcome } satisfies ParseReply),
    (err: unknown) =>
      parentPort!.postMessage({
        id: req.id,
        outcome: { ok: false, kind: 'unparseable', error: `cannot parse DICOM: ${String(err)}` },
      } satisfies ParseReply),
  );
});
