import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api/client';
import { subscribeLive } from '../api/events';
import { dateTime, personName, reportLabel } from '../lib/format';
import { href } from '../router';
import type { StudyItem, StudyPage } from './worklist-types';

/**
 * The worklist: studies with their AI and report state, filtered and sorted by the API, paged by
 * cursor (a deep page costs what the first does), updated in place from the node's live events.
 * Filters and cursors stay in this screen's memory, never in the URL: patient text is PHI.
 */

const PAGE_SIZE = 50;
const MODALITIES = ['CT', 'MR', 'CR', 'DX', 'US', 'MG', 'PT', 'NM', 'XA', 'SR'];

interface Filters {
  patient: string;
  date_from: string;
  date_to: string;
  modality: string;
  ai_status: string;
  report_status: string;
  sort: string;
}

const NO_FILTERS: Filters = { patient: '', date_from: '', date_to: '', modality: '', ai_status: '', report_status: '', sort: 'date' };

function query(f: Filters, cursor: string | undefined): string {
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  if (cursor) q.set('cursor', cursor);
  return `/api/studies?${q}`;
}

export function WorklistScreen() {
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  // cursors[n]: the cursor of page n (page 0 has none).
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const [page, setPage] = useState(0);
  const [data, setData] = useState<StudyPage | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState<boolean | null>(null);
  const items = useRef<StudyItem[]>([]);
  items.current = data?.items ?? [];
  const where = useRef({ filters, cursor: cursors[page], page });
  where.current = { filters, cursor: cursors[page], page };

  const load = useCallback(async (quiet = false) => {
    const { filters: f, cursor } = where.current;
    if (!quiet) setLoading(true);
    try {
      const res = await api<StudyPage>(query(f, cursor));
      setData(res);
      setError(null);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 400 ? `Check the filters: ${err.message}` : 'The worklist could not be loaded.');
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    void load();
  }, [filters, page, load]);

  // Live updates: rows in view are re-read in place; a new study reloads the first page.
  useEffect(() => {
    const ctrl = new AbortController();
    let reload: ReturnType<typeof setTimeout> | undefined;
    const reloadSoon = () => {
      clearTimeout(reload);
      reload = setTimeout(() => void load(true), 300);
    };
    const refreshRow = async (uid: string) => {
      const row = items.current.find((s) => s.study_instance_uid === uid);
      if (!row) {
        if (where.current.page === 0) reloadSoon();
        return;
      }
      try {
        const fresh = await api<StudyItem>(`/api/studies/${row.id}`);
        setData((d) => d && { ...d, items: d.items.map((s) => (s.id === fresh.id ? { ...s, ...fresh } : s)) });
      } catch {
        // The next event or page load corrects it.
      }
    };
    subscribeLive(
      {
        study: (e) => void refreshRow(e.study_instance_uid),
        analysis: (e) => {
          const row = items.current.find((s) => s.study_instance_uid === e.study_instance_uid);
          if (!row) return void (where.current.page === 0 && reloadSoon());
          setData(
            (d) =>
              d && {
                ...d,
                items: d.items.map((s) =>
                  s.id === row.id
                    ? {
                        ...s,
                        analysis: { id: e.analysis_id, status: e.status, progress: { stage: null, percent: Math.round(e.progress * 100) } },
                      }
                    : s,
                ),
              },
          );
          if (e.status !== 'running' && e.status !== 'queued') void refreshRow(e.study_instance_uid);
        },
        report: (e) => void refreshRow(e.study_instance_uid),
        onReconnect: () => void load(true),
        onState: setLive,
      },
      ctrl.signal,
    );
    return () => {
      clearTimeout(reload);
      ctrl.abort();
    };
  }, [load]);

  const apply = (e: Event) => {
    e.preventDefault();
    setCursors([undefined]);
    setPage(0);
    setFilters({ ...draft });
  };
  const reset = () => {
    setDraft(NO_FILTERS);
    setCursors([undefined]);
    setPage(0);
    setFilters(NO_FILTERS);
  };
  const next = () => {
    if (!data?.next_cursor) return;
    setCursors((c) => [...c.slice(0, page + 1), data.next_cursor ?? undefined]);
    setPage(page + 1);
  };
  const field = (k: keyof Filters) => ({
    value: draft[k],
    onInput: (e: Event) => setDraft({ ...draft, [k]: (e.currentTarget as HTMLInputElement).value }),
  });
  const onRowKey = (e: KeyboardEvent) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const links = [...(e.currentTarget as HTMLElement).querySelectorAll<HTMLAnchorElement>('a.open')];
    const at = links.indexOf(document.activeElement as HTMLAnchorElement);
    if (at < 0) return;
    e.preventDefault();
    links[Math.max(0, Math.min(links.length - 1, at + (e.key === 'ArrowDown' ? 1 : -1)))]?.focus();
  };

  const first = page * PAGE_SIZE + 1;
  return (
    <section aria-labelledby="worklist-title">
      <div class="title-row">
        <h1 id="worklist-title">Worklist</h1>
        <span class={`live ${live ? 'on' : ''}`} role="status">
          {live === null ? 'Connecting…' : live ? 'Live' : 'Live updates paused, reconnecting…'}
        </span>
      </div>
      <form class="filters" onSubmit={apply} aria-label="Filter the worklist">
        <div>
          <label for="f-patient">Patient name or ID</label>
          <input id="f-patient" type="search" maxLength={64} autoComplete="off" {...field('patient')} />
        </div>
        <div>
          <label for="f-from">From</label>
          <input id="f-from" type="date" {...field('date_from')} />
        </div>
        <div>
          <label for="f-to">To</label>
          <input id="f-to" type="date" {...field('date_to')} />
        </div>
        <div>
          <label for="f-modality">Modality</label>
          <select id="f-modality" {...field('modality')}>
            <option value="">Any</option>
            {MODALITIES.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for="f-ai">AI status</label>
          <select id="f-ai" {...field('ai_status')}>
            <option value="">Any</option>
            <option value="none">None</option>
            <option value="queued">Queued</option>
            <option value="running">Running</option>
            <option value="succeeded">Succeeded</option>
            <option value="failed">Failed</option>
            <option value="cancelled">Cancelled</option>
          </select>
        </div>
        <div>
          <label for="f-report">Report</label>
          <select id="f-report" {...field('report_status')}>
            <option value="">Any</option>
            <option value="none">None</option>
            <option value="unsigned">Draft (unsigned)</option>
            <option value="signed">Signed</option>
          </select>
        </div>
        <div>
          <label for="f-sort">Sort by</label>
          <select id="f-sort" {...field('sort')}>
            <option value="date">Date (newest first)</option>
            <option value="patient">Patient (A–Z)</option>
            <option value="status">AI status</option>
          </select>
        </div>
        <div class="actions">
          <button type="submit">Apply</button>
          <button type="button" class="secondary" onClick={reset}>
            Clear
          </button>
        </div>
      </form>

      {error && (
        <p class="error" role="alert">
          {error}{' '}
          <button type="button" class="secondary" onClick={() => void load()}>
            Retry
          </button>
        </p>
      )}
      {loading && !data && <p role="status">Loading the worklist…</p>}
      {data && data.items.length === 0 && !loading && (
        <p class="empty" role="status">
          No studies match{filters === NO_FILTERS ? ' yet: studies appear here as they arrive' : ' these filters'}.
        </p>
      )}
      {data && data.items.length > 0 && (
        <>
          <p class="count" role="status" aria-live="polite">
            {loading ? 'Updating… ' : ''}
            Studies {first}–{first + data.items.length - 1} of {data.total}
          </p>
          <div class="table-wrap">
            <table class="worklist">
              <thead>
                <tr>
                  <th scope="col" aria-sort={filters.sort === 'patient' ? 'ascending' : undefined}>
                    Patient
                  </th>
                  <th scope="col" aria-sort={filters.sort === 'date' ? 'descending' : undefined}>
                    Date
                  </th>
                  <th scope="col">Modality</th>
                  <th scope="col" class="wide">
                    Description
                  </th>
                  <th scope="col" class="num">
                    Images
                  </th>
                  <th scope="col" aria-sort={filters.sort === 'status' ? 'ascending' : undefined}>
                    AI
                  </th>
                  <th scope="col">Safety flags</th>
                  <th scope="col">Report</th>
                </tr>
              </thead>
              <tbody onKeyDown={onRowKey}>
                {data.items.map((s) => (
                  <Row key={s.id} s={s} />
                ))}
              </tbody>
            </table>
          </div>
          <nav class="pager" aria-label="Pages">
            <button type="button" class="secondary" disabled={page === 0 || loading} onClick={() => setPage(page - 1)}>
              Previous page
            </button>
            <span>Page {page + 1}</span>
            <button type="button" class="secondary" disabled={!data.next_cursor || loading} onClick={next}>
              Next page
            </button>
          </nav>
        </>
      )}
    </section>
  );
}

function Row({ s }: { s: StudyItem }) {
  const a = s.analysis;
  const r = s.report;
  return (
    <tr data-study={s.id}>
      <td>
        <a class="open" href={href({ name: 'study', id: s.id })}>
          {personName(s.patient.patient_name) || '(no name)'}
        </a>
        <div class="sub">{s.patient.patient_id}</div>
      </td>
      <td>{s.study_date ?? '—'}</td>
      <td>{s.modalities_in_study.join(', ') || '—'}</td>
      <td class="wide">{s.study_description ?? ''}</td>
      <td class="num">{s.num_instances}</td>
      <td class="ai">
        <span class={`badge ai-${a?.status ?? 'none'}`}>{a?.status ?? 'none'}</span>
        {a && (a.status === 'running' || a.status === 'queued') && (
          <progress max={100} value={a.progress.percent ?? 0} aria-label={`AI analysis progress, ${a.progress.percent ?? 0}%`} />
        )}
      </td>
      <td>
        {s.safety_flags.count === 0 ? (
          <span class="sub">none</span>
        ) : (
          <span class={`badge ${s.safety_flags.blocking ? 'danger' : 'warn'}`}>
            {s.safety_flags.count}
            {s.safety_flags.blocking ? `, ${s.safety_flags.blocking} blocking` : ''}
          </span>
        )}
      </td>
      <td class="report">
        <span class={`badge report-${r?.signed ? 'signed' : (r?.status ?? 'none')}`}>{reportLabel(r?.status)}</span>
        {r?.signed && (
          <div class="sub">
            by {r.signer_name ? personName(r.signer_name) : r.signed_by} {dateTime(r.signed_at)}
          </div>
        )}
      </td>
    </tr>
  );
}
