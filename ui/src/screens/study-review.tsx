import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, can, currentSession } from '../api/client';
import { subscribeLive } from '../api/events';
import {
  download,
  draftReport,
  patchReport,
  reportsOfStudy,
  signReport,
  versionsOf,
  type ReportSummary,
  type VersionView,
} from '../api/reports';
import { dateTime, personName } from '../lib/format';
import { findingsPatch, type FindingChange } from '../lib/review';
import { href } from '../router';
import { FindingCard } from './review/finding-card';
import { History } from './review/history';
import { SignDialog } from './review/sign-dialog';
import type { StudyItem } from './worklist-types';

/**
 * Study review (issue 18, item 3): the study's header, its reports, and the AI draft beside its
 * key images; a radiologist accepts, rejects (with a reason) or edits each finding, edits the
 * impression and signs with their password (the node publishes the VERIFIED successor); the
 * versions and the diff between two; exports. Live events for this study re-read it. The URL
 * holds the study's id only.
 */
export function StudyReviewScreen({ id }: { id: number }) {
  const [study, setStudy] = useState<StudyItem | null>(null);
  const [reports, setReports] = useState<ReportSummary[] | null>(null);
  const [chosen, setChosen] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [stamp, setStamp] = useState(0);
  const uid = useRef<string | null>(null);

  const load = useCallback(
    async (quiet = false) => {
      if (!quiet) {
        setStudy(null);
        setReports(null);
      }
      try {
        const [s, r] = await Promise.all([api<StudyItem>(`/api/studies/${id}`), reportsOfStudy(id)]);
        uid.current = s.study_instance_uid;
        setStudy(s);
        setReports(r.items);
        setError(null);
        setStamp((n) => n + 1);
      } catch (err) {
        setError(
          err instanceof ApiError && err.status === 404 ? 'This study does not exist (any more).' : 'The study could not be loaded.',
        );
      }
    },
    [id],
  );

  useEffect(() => {
    setChosen(null);
    void load();
  }, [load]);

  // Live: an arrival, an analysis' progress or end, a report created, edited, signed or published for this study.
  useEffect(() => {
    const ctrl = new AbortController();
    let soon: ReturnType<typeof setTimeout> | undefined;
    const mine = (e: { study_instance_uid: string }) => {
      if (e.study_instance_uid !== uid.current) return;
      clearTimeout(soon);
      soon = setTimeout(() => void load(true), 250);
    };
    subscribeLive({ study: mine, analysis: mine, report: mine, onReconnect: () => void load(true) }, ctrl.signal);
    return () => {
      clearTimeout(soon);
      ctrl.abort();
    };
  }, [load]);

  const report = reports?.find((r) => r.id === chosen) ?? reports?.[0] ?? null;
  return (
    <section aria-labelledby="review-title" class="review">
      <p>
        <a href={href({ name: 'worklist' })}>← Worklist</a>
      </p>
      <h1 id="review-title">Study review</h1>
      {error && (
        <p class="error" role="alert">
          {error}{' '}
          <button type="button" class="secondary" onClick={() => void load()}>
            Retry
          </button>
        </p>
      )}
      {!study && !error && <p role="status">Loading the study…</p>}
      {study && <StudyHeader study={study} />}
      {study && reports && reports.length === 0 && <NoReport study={study} onDrafted={() => void load(true)} />}
      {study && reports && reports.length > 1 && (
        <nav aria-label="Reports of this study">
          <ul class="tabs">
            {reports.map((r) => (
              <li key={r.id}>
                <button type="button" class="secondary" aria-pressed={r.id === report?.id} onClick={() => setChosen(r.id)}>
                  Report {r.id}: {statusLabel(r)}
                </button>
              </li>
            ))}
          </ul>
        </nav>
      )}
      {study && report && <ReportPanel key={report.id} study={study} summary={report} stamp={stamp} onChanged={() => load(true)} />}
    </section>
  );
}

function statusLabel(r: ReportSummary): string {
  if (r.status === 'signed') return 'signed';
  if (r.status === 'amended') return 'signed (amended)';
  return r.state === 'preliminary' ? 'unverified AI draft (edited)' : 'unverified AI draft';
}

function StudyHeader({ study }: { study: StudyItem }) {
  const a = study.analysis;
  return (
    <dl class="summary study-header card">
      <dt>Patient</dt>
      <dd>
        {personName(study.patient.patient_name) || '(no name)'} <span class="sub">({study.patient.patient_id})</span>
      </dd>
      <dt>Date</dt>
      <dd>{study.study_date ?? '—'}</dd>
      <dt>Modality</dt>
      <dd>{study.modalities_in_study.join(', ') || '—'}</dd>
      <dt>Description</dt>
      <dd>{study.study_description ?? '—'}</dd>
      <dt>Images</dt>
      <dd>{study.num_instances}</dd>
      <dt>AI analysis</dt>
      <dd>
        <span class={`badge ai-${a?.status ?? 'none'}`}>{a?.status ?? 'none'}</span>
        {a && (a.status === 'running' || a.status === 'queued') && (
          <progress max={100} value={a.progress.percent ?? 0} aria-label={`AI analysis progress, ${a.progress.percent ?? 0}%`} />
        )}
      </dd>
    </dl>
  );
}

/** No report yet: why, and (for a role that may) drafting one from a finished analysis. */
function NoReport({ study, onDrafted }: { study: StudyItem; onDrafted: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const a = study.analysis;
  const draft = async () => {
    if (!a) return;
    setBusy(true);
    setError(null);
    try {
      await draftReport(study.id, a.id);
      onDrafted();
    } catch (err) {
      setError(err instanceof ApiError ? `No draft: ${err.message}` : 'The node could not be reached.');
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="empty">
      <p role="status">
        {!a
          ? 'No AI analysis of this study yet, so there is no report to review.'
          : a.status === 'succeeded'
            ? 'The AI analysis finished; its draft report has not been made (held back, or automatic publishing is off).'
            : a.status === 'failed' || a.status === 'cancelled'
              ? `The AI analysis ${a.status}: there is no report to review.`
              : 'The AI analysis is under way: its draft appears here when it is done.'}
      </p>
      {a?.status === 'succeeded' && can('analysis:run') && (
        <button type="button" onClick={() => void draft()} disabled={busy}>
          Make the draft report
        </button>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function ReportPanel({
  study,
  summary,
  stamp,
  onChanged,
}: {
  study: StudyItem;
  summary: ReportSummary;
  stamp: number;
  onChanged: () => Promise<void>;
}) {
  const [versions, setVersions] = useState<VersionView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [signing, setSigning] = useState(false);
  const [editingImpression, setEditingImpression] = useState(false);
  const [busy, setBusy] = useState(false);
  const impression = useRef<HTMLTextAreaElement>(null);
  const signButton = useRef<HTMLButtonElement>(null);

  const loadVersions = useCallback(async () => {
    try {
      setVersions((await versionsOf(summary.id)).items);
      setError(null);
    } catch {
      setError('The report could not be loaded.');
    }
  }, [summary.id]);
  // Re-read when the summary says the report moved on (an edit here, a live event, someone else).
  useEffect(() => {
    void loadVersions();
  }, [loadVersions, summary.version, stamp]);
  useEffect(() => {
    if (editingImpression) impression.current?.focus();
  }, [editingImpression]);

  const current = versions?.[versions.length - 1];
  const draft = summary.ai_draft;
  const mayEdit = draft && can('reports:sign');
  const maySign = mayEdit && (currentSession()?.me.role === 'radiologist' || !!currentSession()?.me.auth_disabled);

  const save = async (patch: Record<string, unknown>, what: string) => {
    try {
      await patchReport(summary.id, current?.version ?? summary.version, patch);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        await onChanged();
        throw new Error('Someone changed the report meanwhile: the new version is shown; try again.');
      }
      throw new Error(err instanceof ApiError ? `Not saved: ${err.message}` : 'Not saved: the node could not be reached.');
    }
    setNotice(`${what} saved (a new version of the draft).`);
    await onChanged();
  };
  const onFinding = (number: number, change: FindingChange) =>
    save(
      { findings: findingsPatch(current?.content.findings ?? [], number, change) },
      'decision' in change ? `Finding ${number} ${change.decision}` : `Finding ${number}`,
    );
  const saveImpression = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await save({ impression: impression.current?.value ?? '' }, 'Impression');
      setEditingImpression(false);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const sign = async (password: string | undefined) => {
    await signReport(summary.id, current?.version ?? summary.version, password);
    setSigning(false);
    setNotice('Signed: the VERIFIED report is published.');
    await onChanged();
  };
  const exportAs = async (kind: 'pdf' | 'json') => {
    setError(null);
    try {
      await download(`/api/export/report/${summary.id}/${kind}`, `report-${summary.id}.${kind}`);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 404 ? `This report has no stored ${kind.toUpperCase()} yet.` : 'The export failed.',
      );
    }
  };
  const exportDecisions = async () => {
    setError(null);
    try {
      await download('/api/reports/decisions?format=csv', 'finding-decisions.csv');
    } catch {
      setError('The decisions export failed.');
    }
  };

  return (
    <div class="report" data-report={summary.id}>
      {draft ? (
        <p class="banner unverified" role="note">
          <strong>Unverified AI draft.</strong> Written by an AI model{summary.model ? ` (${summary.model.name}` : ''}
          {summary.model && !summary.model.validated ? ', not validated)' : summary.model ? ')' : ''}: not a diagnosis until a radiologist
          signs it.
        </p>
      ) : (
        <p class="banner signed" role="note">
          <strong>Signed</strong> by {summary.signer?.display_name ?? summary.signer?.username ?? '—'} {dateTime(summary.signer?.signed_at)}
          : the VERIFIED report (version {summary.version}).
        </p>
      )}
      <div class="title-row">
        <h2>
          Report {summary.id}, version {summary.version}{' '}
          <span class={`badge report-${summary.status === 'draft' ? summary.state : 'signed'}`}>{statusLabel(summary)}</span>
        </h2>
      </div>
      {summary.blocking && (
        <p class="error" role="note">
          A blocking safety flag is raised on this draft: check the flagged findings before signing.
        </p>
      )}
      {notice && (
        <p class="note ok" role="status">
          {notice}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="toolbar">
        {maySign && (
          <button type="button" ref={signButton} onClick={() => setSigning(true)} disabled={!current}>
            Sign…
          </button>
        )}
        <button type="button" class="secondary" onClick={() => void exportAs('pdf')}>
          Download PDF
        </button>
        <button type="button" class="secondary" onClick={() => void exportAs('json')}>
          Download JSON
        </button>
        {can('reports:sign') && (
          <button type="button" class="secondary" onClick={() => void exportDecisions()}>
            Export all decisions (CSV)
          </button>
        )}
      </div>
      {!versions && !error && <p role="status">Loading the report…</p>}
      {current && (
        <>
          <h3 class="section">Findings ({current.content.findings.length})</h3>
          {current.content.findings.length === 0 && <p class="empty">The model reported no findings.</p>}
          <div class="findings">
            {current.content.findings.map((f) => (
              <FindingCard
                key={f.tracking_uid}
                reportId={summary.id}
                version={current.version}
                f={f}
                editable={mayEdit}
                onChange={onFinding}
              />
            ))}
          </div>
          <section class="card impression" aria-labelledby="impression-title">
            <h3 id="impression-title">Impression {draft && <span class="badge ai-draft">unverified AI draft</span>}</h3>
            {editingImpression ? (
              <form onSubmit={saveImpression} class="inline-form">
                <label for="impression-text">Impression</label>
                <textarea id="impression-text" ref={impression} rows={4} maxLength={20000} defaultValue={current.content.impression} />
                <div class="actions">
                  <button type="submit" disabled={busy}>
                    Save impression
                  </button>
                  <button type="button" class="secondary" onClick={() => setEditingImpression(false)}>
                    Cancel
                  </button>
                </div>
              </form>
            ) : (
              <>
                <p class="impression-text">{current.content.impression || <span class="sub">(none)</span>}</p>
                {mayEdit && (
                  <button type="button" class="secondary" onClick={() => setEditingImpression(true)}>
                    Edit impression…
                  </button>
                )}
              </>
            )}
          </section>
          <History key={versions?.length} reportId={summary.id} versions={versions ?? []} />
        </>
      )}
      {maySign && (
        <SignDialog open={signing} needsPassword={!currentSession()?.me.auth_disabled} onSign={sign} onClose={() => setSigning(false)} />
      )}
    </div>
  );
}
