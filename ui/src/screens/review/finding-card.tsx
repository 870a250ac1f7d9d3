import { useEffect, useRef, useState } from 'preact/hooks';
import type { FindingView } from '../../api/reports';
import { confidenceLabel, placeLabel, type FindingChange } from '../../lib/review';
import { KeyImage } from './key-image';

const LATERALITIES = ['left', 'right', 'bilateral', 'midline', 'not_applicable'];
const CATEGORIES = ['normal', 'abnormal', 'incidental', 'artifact', 'limitation'];
const SEVERITIES = ['normal', 'mild', 'moderate', 'severe', 'indeterminate'];

const DECISION: Record<string, string> = { accepted: 'Accepted', rejected: 'Rejected', edited: 'Edited' };

/**
 * One finding: the key image with its box beside the text (confidence, place, flags, who wrote
 * it, the radiologist's decision), and, for a reviewer of a draft, accept / reject (a reason is
 * required) / edit (the text and the API's editable fields).
 */
export function FindingCard({
  reportId,
  version,
  f,
  editable,
  onChange,
}: {
  reportId: number;
  version: number;
  f: FindingView;
  editable: boolean;
  onChange: (number: number, change: FindingChange) => Promise<void>;
}) {
  const [mode, setMode] = useState<'view' | 'reject' | 'edit'>('view');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const id = `finding-${f.number}`;
  const blocking = f.flags.some((x) => x.blocking);
  const first = useRef<HTMLTextAreaElement>(null);
  // An opened form starts in its first field.
  useEffect(() => {
    if (mode !== 'view') first.current?.focus();
  }, [mode]);

  const run = async (change: FindingChange) => {
    setBusy(true);
    setError(null);
    try {
      await onChange(f.number, change);
      setMode('view');
    } catch (err) {
      setError(err instanceof Error ? err.message : 'The change was not saved.');
    } finally {
      setBusy(false);
    }
  };
  const reject = (e: Event) => {
    e.preventDefault();
    const reason = (new FormData(e.currentTarget as HTMLFormElement).get('reason') ?? '').toString().trim();
    if (!reason) return setError('Say why the finding is rejected.');
    void run({ decision: 'rejected', decision_reason: reason });
  };
  const edit = (e: Event) => {
    e.preventDefault();
    const d = new FormData(e.currentTarget as HTMLFormElement);
    const get = (k: string) => (d.get(k) ?? '').toString();
    if (!get('description').trim()) return setError('A finding needs its text.');
    void run({
      edit: {
        description: get('description'),
        anatomical_location: get('anatomical_location'),
        laterality: get('laterality'),
        category: get('category'),
        severity: get('severity'),
        recommendation: get('recommendation'),
      },
    });
  };

  return (
    <article
      class={`finding card${blocking ? ' blocking' : ''}${f.decision === 'rejected' ? ' rejected' : ''}`}
      aria-labelledby={`${id}-title`}
      data-finding={f.number}
    >
      <KeyImage reportId={reportId} number={f.number} version={version} label={f.description.slice(0, 60)} />
      <div class="finding-text">
        <h3 id={`${id}-title`}>
          Finding {f.number}{' '}
          <span class={`badge ${f.author === 'ai' ? 'ai-draft' : 'report-preliminary'}`}>
            {f.author === 'ai' ? 'AI finding, unverified' : "Radiologist's text"}
          </span>{' '}
          {f.decision && <span class={`badge decision-${f.decision}`}>{DECISION[f.decision]}</span>}
        </h3>
        <p class="description">{f.description}</p>
        <dl class="summary">
          <dt>Confidence</dt>
          <dd>{confidenceLabel(f.confidence)}</dd>
          <dt>Location</dt>
          <dd>{placeLabel(f.anatomical_location, f.laterality)}</dd>
          {(f.category || f.severity) && (
            <>
              <dt>Kind</dt>
              <dd>{[f.category, f.severity].filter(Boolean).join(', ')}</dd>
            </>
          )}
          {f.recommendation && (
            <>
              <dt>Recommendation</dt>
              <dd>{f.recommendation}</dd>
            </>
          )}
          <dt>Safety flags</dt>
          <dd>
            {f.flags.length === 0 ? (
              <span class="sub">none</span>
            ) : (
              <ul class="flags">
                {f.flags.map((x) => (
                  <li key={x.rule} class={`badge ${x.blocking ? 'danger' : 'warn'}`}>
                    {x.rule}
                    {x.blocking ? ' (blocking: check before signing)' : ''}
                  </li>
                ))}
              </ul>
            )}
          </dd>
          {f.decision_reason && (
            <>
              <dt>Reason</dt>
              <dd>{f.decision_reason}</dd>
            </>
          )}
        </dl>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {editable && mode === 'view' && (
          <div class="actions">
            {f.author === 'ai' && (
              <>
                <button type="button" disabled={busy || f.decision === 'accepted'} onClick={() => void run({ decision: 'accepted' })}>
                  Accept
                </button>
                <button type="button" class="secondary" disabled={busy} onClick={() => setMode('reject')}>
                  Reject…
                </button>
              </>
            )}
            <button type="button" class="secondary" disabled={busy} onClick={() => setMode('edit')}>
              Edit…
            </button>
          </div>
        )}
        {editable && mode === 'reject' && (
          <form class="inline-form" noValidate onSubmit={reject} aria-label={`Reject finding ${f.number}`}>
            <label for={`${id}-reason`}>Why is finding {f.number} rejected? (required)</label>
            <textarea id={`${id}-reason`} name="reason" rows={2} maxLength={2000} required ref={first} />
            <div class="actions">
              <button type="submit" disabled={busy}>
                Reject finding {f.number}
              </button>
              <button type="button" class="secondary" onClick={() => (setMode('view'), setError(null))}>
                Cancel
              </button>
            </div>
          </form>
        )}
        {editable && mode === 'edit' && (
          <form class="inline-form" noValidate onSubmit={edit} aria-label={`Edit finding ${f.number}`}>
            <label for={`${id}-description`}>Text</label>
            <textarea
              id={`${id}-description`}
              name="description"
              rows={3}
              maxLength={4000}
              required
              ref={first}
              defaultValue={f.description}
            />
            <div class="fields">
              <div>
                <label for={`${id}-location`}>Location</label>
                <input id={`${id}-location`} name="anatomical_location" maxLength={256} defaultValue={f.anatomical_location ?? ''} />
              </div>
              <Choice id={`${id}-laterality`} name="laterality" label="Laterality" value={f.laterality} options={LATERALITIES} />
              <Choice id={`${id}-category`} name="category" label="Category" value={f.category} options={CATEGORIES} />
              <Choice id={`${id}-severity`} name="severity" label="Severity" value={f.severity} options={SEVERITIES} />
            </div>
            <label for={`${id}-recommendation`}>Recommendation</label>
            <textarea id={`${id}-recommendation`} name="recommendation" rows={2} maxLength={4000} defaultValue={f.recommendation ?? ''} />
            <div class="actions">
              <button type="submit" disabled={busy}>
                Save finding {f.number}
              </button>
              <button type="button" class="secondary" onClick={() => (setMode('view'), setError(null))}>
                Cancel
              </button>
            </div>
          </form>
        )}
      </div>
    </article>
  );
}

function Choice({ id, name, label, value, options }: { id: string; name: string; label: string; value: string | null; options: string[] }) {
  return (
    <div>
      <label for={id}>{label}</label>
      <select id={id} name={name}>
        <option value="" selected={!value}>
          —
        </option>
        {options.map((o) => (
          <option key={o} value={o} selected={o === value}>
            {o.replace('_', ' ')}
          </option>
        ))}
      </select>
    </div>
  );
}
