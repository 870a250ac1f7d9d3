import { useState } from 'preact/hooks';
import { apiBlob } from '../../api/client';
import { dateTime } from '../../lib/format';
import { count, LoadState, message, useLoad } from './common';

/**
 * The audit trail (audit:read): search by user, action, outcome, patient, study and time, paged;
 * the matches exported as CSV, fetched with the token in the header and saved from a blob, so no
 * token (and no filter text) ever goes into a URL the browser shows or keeps.
 */

const PAGE = 50;
/** The node's CSV limit per request. */
const CSV_MAX = 10_000;

interface AuditRow {
  id: number;
  at: string;
  actorType: string;
  actor: string | null;
  peer: string | null;
  action: string;
  resourceType: string | null;
  resourceId: string | null;
  patientId: string | null;
  outcome: string;
  status: number | null;
  details: Record<string, unknown> | null;
}

interface Filters {
  user: string;
  action: string;
  outcome: string;
  patient_id: string;
  study: string;
  from: string;
  to: string;
}

const NONE: Filters = { user: '', action: '', outcome: '', patient_id: '', study: '', from: '', to: '' };

/** The filters as the API's query: datetime-local inputs (local time) become ISO instants. */
function params(f: Filters): URLSearchParams {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) {
    if (!v.trim()) continue;
    if (k === 'from' || k === 'to') {
      const d = new Date(v);
      if (!Number.isNaN(d.getTime())) q.set(k, d.toISOString());
    } else q.set(k, v.trim());
  }
  return q;
}

export function AuditSection() {
  const [draft, setDraft] = useState<Filters>(NONE);
  const [filters, setFilters] = useState<Filters>(NONE);
  const [offset, setOffset] = useState(0);
  const q = params(filters);
  q.set('limit', String(PAGE));
  q.set('offset', String(offset));
  const res = useLoad<{ total: number; items: AuditRow[] }>(`/api/audit?${q}`, 'search the audit trail');
  const [csv, setCsv] = useState<{ busy: boolean; text?: string; error?: string }>({ busy: false });

  const field = (k: keyof Filters) => ({
    value: draft[k],
    onInput: (e: Event) => setDraft({ ...draft, [k]: (e.currentTarget as HTMLInputElement).value }),
  });
  const search = (e: Event) => {
    e.preventDefault();
    setOffset(0);
    setFilters({ ...draft });
  };
  const clear = () => {
    setDraft(NONE);
    setOffset(0);
    setFilters(NONE);
  };
  const exportCsv = async () => {
    setCsv({ busy: true });
    const p = params(filters);
    p.set('format', 'csv');
    p.set('limit', String(CSV_MAX));
    try {
      const { blob, headers } = await apiBlob(`/api/audit?${p}`);
      const total = Number(headers.get('X-Total-Count') ?? 0);
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = `audit-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.csv`;
      document.body.append(a);
      a.click();
      a.remove();
      // Revoked once the download has its copy.
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      const rows = Math.min(total, CSV_MAX);
      setCsv({
        busy: false,
        text: `Exported ${count(rows)} row${rows === 1 ? '' : 's'}${total > CSV_MAX ? ` (the first ${count(CSV_MAX)} of ${count(total)}: narrow the search for the rest)` : ''}.`,
      });
    } catch (err) {
      setCsv({ busy: false, error: message(err, 'export the audit trail') });
    }
  };

  return (
    <div>
      <form class="filters" onSubmit={search} aria-label="Search the audit trail">
        <div>
          <label for="a-user">User</label>
          <input id="a-user" maxLength={64} autoComplete="off" {...field('user')} />
        </div>
        <div>
          <label for="a-action">Action</label>
          <input id="a-action" maxLength={64} autoComplete="off" placeholder="e.g. auth.login" {...field('action')} />
        </div>
        <div>
          <label for="a-outcome">Outcome</label>
          <select id="a-outcome" {...field('outcome')}>
            <option value="">Any</option>
            <option value="success">Success</option>
            <option value="failure">Failure</option>
            <option value="started">Started (not finished)</option>
          </select>
        </div>
        <div>
          <label for="a-patient">Patient ID</label>
          <input id="a-patient" maxLength={64} autoComplete="off" {...field('patient_id')} />
        </div>
        <div>
          <label for="a-study">Study UID</label>
          <input id="a-study" maxLength={64} autoComplete="off" {...field('study')} />
        </div>
        <div>
          <label for="a-from">From</label>
          <input id="a-from" type="datetime-local" {...field('from')} />
        </div>
        <div>
          <label for="a-to">To</label>
          <input id="a-to" type="datetime-local" {...field('to')} />
        </div>
        <div class="actions">
          <button type="submit">Search</button>
          <button type="button" class="secondary" onClick={clear}>
            Clear
          </button>
          <button type="button" class="secondary" disabled={csv.busy} onClick={() => void exportCsv()}>
            {csv.busy ? 'Exporting…' : 'Export CSV'}
          </button>
        </div>
      </form>
      <div aria-live="polite">
        {csv.text && (
          <p class="ok" role="status">
            {csv.text}
          </p>
        )}
        {csv.error && (
          <p class="error" role="alert">
            {csv.error}
          </p>
        )}
      </div>
      <LoadState res={res} what="the audit trail">
        {(d) =>
          d.items.length === 0 ? (
            <p class="empty" role="status">
              No audit rows match.
            </p>
          ) : (
            <>
              <p class="count" role="status">
                Rows {offset + 1}–{offset + d.items.length} of {count(d.total)}
              </p>
              <div class="table-wrap">
                <table class="grid">
                  <caption class="sr-only">Audit rows</caption>
                  <thead>
                    <tr>
                      <th scope="col">When</th>
                      <th scope="col">Who</th>
                      <th scope="col">From</th>
                      <th scope="col">Action</th>
                      <th scope="col">Resource</th>
                      <th scope="col">Patient ID</th>
                      <th scope="col">Outcome</th>
                      <th scope="col">Details</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.items.map((r) => (
                      <tr key={r.id} data-audit={r.id}>
                        <td>{dateTime(r.at)}</td>
                        <td>{r.actor ?? r.actorType}</td>
                        <td>{r.peer ?? ''}</td>
                        <td>{r.action}</td>
                        <td>{[r.resourceType, r.resourceId].filter(Boolean).join(' ')}</td>
                        <td>{r.patientId ?? ''}</td>
                        <td>
                          <span class={`badge ${r.outcome === 'failure' ? 'danger' : r.outcome === 'started' ? 'warn' : 'ok'}`}>
                            {r.outcome}
                            {r.status ? ` ${r.status}` : ''}
                          </span>
                        </td>
                        <td class="wrap details">{r.details ? JSON.stringify(r.details) : ''}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <nav class="pager" aria-label="Audit pages">
                <button type="button" class="secondary" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
                  Previous page
                </button>
                <span>Page {offset / PAGE + 1}</span>
                <button type="button" class="secondary" disabled={offset + PAGE >= d.total} onClick={() => setOffset(offset + PAGE)}>
                  Next page
                </button>
              </nav>
            </>
          )
        }
      </LoadState>
    </div>
  );
}
