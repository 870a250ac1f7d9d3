import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Ingestor } from './ingest.js';
import { errorMessage } from '../errors.js';

/** `radiant import`: walk files and directories and feed each file to the one ingest path. */

export type ImportFileResult =
  | { ok: true; path: string; outcome: string; sopInstanceUid: string; studyInstanceUid: string; bytes: number }
  | { ok: false; path: string; error: string };

export interface ImportSummary {
  files: number;
  stored: number;
  refused: number;
  bytes: number;
  elapsedMs: number;
}

async function* walk(p: string): AsyncGenerator<string> {
  const st = await fsp.lstat(p).catch(() => undefined);
  if (!st) {
    // Reported by the ingest path as a refused file rather than aborting the whole import.
    yield p;
    return;
  }
  if (st.isSymbolicLink()) return;
  if (st.isFile()) {
    yield p;
    return;
  }
  if (!st.isDirectory()) return;
  const entries = (await fsp.readdir(p)).sort();
  for (const e of entries) yield* walk(path.join(p, e));
}

export async function importPaths(
  ingestor: Ingestor,
  paths: string[],
  opts: { concurrency?: number; onResult?: (r: ImportFileResult) => void } = {},
): Promise<ImportSummary> {
  const started = Date.now();
  const summary: ImportSummary = { files: 0, stored: 0, refused: 0, bytes: 0, elapsedMs: 0 };
  const files: AsyncGenerator<string>[] = paths.map((p) => walk(path.resolve(p)));
  const queue = (async function* () {
    for (const gen of files) yield* gen;
  })();

  const worker = async () => {
    for (;;) {
      const next = await queue.next();
      if (next.done) return;
      const file = next.value;
      summary.files++;
      let result: ImportFileResult;
      try {
        const r = await ingestor.ingestFile(file, false, { source: 'import' });
        result = {
          ok: true,
          path: file,
          outcome: r.outcome,
          sopInstanceUid: r.sopInstanceUid,
          studyInstanceUid: r.studyInstanceUid,
          bytes: r.sizeBytes,
        };
        summary.stored++;
        summary.bytes += r.sizeBytes;
      } catch (err) {
        result = { ok: false, path: file, error: errorMessage(err) };
        summary.refused++;
      }
      opts.onResult?.(result);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  summary.elapsedMs = Date.now() - started;
  return summary;
}
