import { studyRow } from '../../catalog/studies.js';
import type { Db } from '../../db/connection.js';
import { errorMessage } from '../../errors.js';
import type { Ingestor } from '../../ingest/ingest.js';
import { importPaths } from '../../ingest/import-files.js';
import type { Logger } from '../../logger.js';
import { getAnalysis, type Analysis } from '../analyses.js';
import { cancelAnalysis, requestAnalysis, type AnalysisRequester } from '../requests.js';
import { scoreStudy, type StudyOutcome } from './eval-result.js';
import type { EvalCase } from './manifest.js';
import { failureReason } from './metrics.js';

/**
 * `radiant eval`'s run: each manifest line in turn, its files through the one ingest path (as
 * `radiant import`), its analysis requested and run by the job queue like any other (the worker
 * the caller started), then scored. One study at a time, so each analysis's time is its own.
 */

export interface EvalDeps {
  db: Db;
  ingestor: Ingestor;
  requester: AnalysisRequester;
  log: Logger;
  /** An analysis not finished after this long is cancelled and counted as failed. */
  studyTimeoutMs: number;
  pollMs?: number;
  /** Called after each study, for progress lines. */
  onStudy?: (o: StudyOutcome) => void;
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/** A line that failed before any analysis (import, unknown study). */
class CaseError extends Error {}

export async function runEval(deps: EvalDeps, cases: readonly EvalCase[]): Promise<StudyOutcome[]> {
  const out: StudyOutcome[] = [];
  for (const c of cases) {
    const o = await runCase(deps, c);
    out.push(o);
    deps.onStudy?.(o);
  }
  return out;
}

async function runCase(deps: EvalDeps, c: EvalCase): Promise<StudyOutcome> {
  const started = Date.now();
  const base = { line: c.line, id: c.id };
  let studyInstanceUid: string | null = c.studyInstanceUid ?? null;
  let importRefused: number | undefined;
  try {
    if (c.paths) {
      const imported = await importStudy(deps.ingestor, c.paths);
      studyInstanceUid = imported.studyInstanceUid;
      if (imported.refused) importRefused = imported.refused;
    } else if (!(await studyRow(deps.db, { uid: studyInstanceUid! }))) {
      throw new CaseError(`study ${studyInstanceUid} is not in the node`);
    }
    const requested = await requestAnalysis(deps.requester, {
      studyInstanceUid: studyInstanceUid!,
      analysisType: c.analysisType,
      trigger: 'manual',
      requestedBy: 'radiant-eval',
      ...(c.indication ? { clinicalIndication: c.indication } : {}),
      ...(c.focus ? { focus: c.focus } : {}),
    });
    const a = await finished(deps, requested.id);
    const wallMs = Date.now() - started;
    const common = {
      ...base,
      studyInstanceUid,
      analysisId: a.id,
      ...(importRefused ? { importRefused } : {}),
      expected: c.labels,
      safetyFlags: a.safetyFlags,
      model: a.model && { name: a.model.name, sha256: a.model.sha256, backend: a.model.backend },
    };
    if (a.status !== 'succeeded') {
      const error = a.error ?? `analysis ${a.status}`;
      return { ...common, status: 'failed', error, reason: failureReason(error), timings: { wallMs } };
    }
    const t = a.timings;
    const totalMs = t.totalMs === undefined ? undefined : t.totalMs - (t.queueWaitMs ?? 0);
    return {
      ...common,
      status: 'succeeded',
      ...scoreStudy(c.labels, c.findings, a.findings ?? [], a.impression),
      findings: a.findings?.length ?? 0,
      timings: {
        ...(totalMs === undefined ? {} : { totalMs }),
        ...(t.inferenceMs === undefined ? {} : { modelMs: t.inferenceMs }),
        wallMs,
      },
    };
  } catch (err) {
    if (!(err instanceof CaseError)) deps.log.warn({ line: c.line, err: errorMessage(err) }, 'eval: study not analysed');
    const error = errorMessage(err);
    return {
      ...base,
      studyInstanceUid,
      analysisId: null,
      ...(importRefused ? { importRefused } : {}),
      expected: c.labels,
      safetyFlags: [],
      status: 'failed',
      error,
      reason: failureReason(error),
      timings: { wallMs: Date.now() - started },
    };
  }
}

/** Imports the files of one line: exactly one study must come of them. */
async function importStudy(ingestor: Ingestor, paths: string[]): Promise<{ studyInstanceUid: string; refused: number }> {
  const studies = new Set<string>();
  let firstRefusal: string | undefined;
  const summary = await importPaths(ingestor, paths, {
    onResult: (r) => {
      if (r.ok) studies.add(r.studyInstanceUid);
      else firstRefusal ??= `${r.path}: ${r.error}`;
    },
  });
  if (studies.size === 0) {
    throw new CaseError(
      summary.files === 0 ? `no files to import: ${paths.join(', ')}` : `no instance stored by the import: ${firstRefusal ?? 'refused'}`,
    );
  }
  if (studies.size > 1) throw new CaseError(`the files hold several studies (${studies.size}; give one study a line)`);
  return { studyInstanceUid: [...studies][0]!, refused: summary.refused };
}

/** Polls the analysis until it has an outcome; cancels it past the study timeout. */
async function finished(deps: EvalDeps, id: number): Promise<Analysis> {
  const deadline = Date.now() + deps.studyTimeoutMs;
  for (;;) {
    const a = await getAnalysis(deps.db, id);
    if (!a) throw new Error(`analysis ${id} vanished`);
    if (FINISHED.has(a.status)) return a;
    if (Date.now() > deadline) {
      await cancelAnalysis(deps.requester, id, 'radiant-eval (timeout)');
      const after = await getAnalysis(deps.db, id);
      const secs = Math.round(deps.studyTimeoutMs / 1000);
      return { ...(after ?? a), status: 'failed', error: `timed out after ${secs} s (cancelled)` };
    }
    await new Promise((r) => setTimeout(r, deps.pollMs ?? 250));
  }
}
