import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api/client';
import { personName } from '../lib/format';
import { href } from '../router';
import type { StudyItem } from './worklist-types';

/**
 * PLACEHOLDER for the study review screen (issue 18, item 3: the AI draft beside the images,
 * per-finding accept/reject/edit, sign, versions). It shows the study's summary so the worklist's
 * links lead somewhere; the review engineer replaces the body of this module.
 */
export function StudyReviewScreen({ id }: { id: number }) {
  const [study, setStudy] = useState<StudyItem | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setStudy(null);
    setError(null);
    api<StudyItem>(`/api/studies/${id}`).then(setStudy, (err: unknown) =>
      setError(err instanceof ApiError && err.status === 404 ? 'This study does not exist (any more).' : 'The study could not be loaded.'),
    );
  }, [id]);
  return (
    <section aria-labelledby="review-title">
      <p>
        <a href={href({ name: 'worklist' })}>← Worklist</a>
      </p>
      <h1 id="review-title">Study review</h1>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!study && !error && <p role="status">Loading the study…</p>}
      {study && (
        <dl class="summary">
          <dt>Patient</dt>
          <dd>
            {personName(study.patient.patient_name)} ({study.patient.patient_id})
          </dd>
          <dt>Date</dt>
          <dd>{study.study_date ?? '—'}</dd>
          <dt>Description</dt>
          <dd>{study.study_description ?? '—'}</dd>
          <dt>AI analysis</dt>
          <dd>{study.analysis?.status ?? 'none'}</dd>
          <dt>Report</dt>
          <dd>{study.report?.status ?? 'none'}</dd>
        </dl>
      )}
      <p class="note">The review of the AI draft (findings, decisions, signing) comes here.</p>
    </section>
  );
}
