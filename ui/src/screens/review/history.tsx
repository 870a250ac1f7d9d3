import { useState } from 'preact/hooks';
import { diffOf, type VersionDiff, type VersionView } from '../../api/reports';
import { dateTime } from '../../lib/format';

const show = (v: unknown) => (v === null || v === undefined || v === '' ? '—' : typeof v === 'string' ? v : JSON.stringify(v));

/** The report's versions (who, when, what) and the difference between any two (GET /api/reports/:id/diff). */
export function History({ reportId, versions }: { reportId: number; versions: VersionView[] }) {
  const last = versions[versions.length - 1]?.version ?? 1;
  const [from, setFrom] = useState(Math.max(1, last - 1));
  const [to, setTo] = useState(last);
  const [diff, setDiff] = useState<VersionDiff | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const compare = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setDiff(await diffOf(reportId, from, to));
    } catch {
      setDiff(null);
      setError('The difference could not be loaded.');
    } finally {
      setBusy(false);
    }
  };
  const pick = (set: (n: number) => void) => (e: Event) => set(Number((e.currentTarget as HTMLSelectElement).value));

  return (
    <section class="card history" aria-labelledby="history-title">
      <h2 id="history-title">Version history</h2>
      <div class="table-wrap">
        <table class="worklist versions">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">What</th>
              <th scope="col">State</th>
              <th scope="col">By</th>
              <th scope="col">When</th>
            </tr>
          </thead>
          <tbody>
            {versions.map((v) => (
              <tr key={v.version}>
                <td>{v.version}</td>
                <td>
                  {v.action}
                  {v.reason ? <div class="sub">{v.reason}</div> : null}
                </td>
                <td>{v.status === 'draft' ? 'unverified draft' : v.status}</td>
                <td>{v.changed_by_name ?? v.changed_by ?? 'the node'}</td>
                <td>{dateTime(v.changed_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {versions.length > 1 && (
        <form class="filters diff-form" onSubmit={compare} aria-label="Compare two versions">
          <div>
            <label for="diff-from">From version</label>
            <select id="diff-from" value={String(from)} onChange={pick(setFrom)}>
              {versions.map((v) => (
                <option key={v.version} value={String(v.version)}>
                  {v.version}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="diff-to">To version</label>
            <select id="diff-to" value={String(to)} onChange={pick(setTo)}>
              {versions.map((v) => (
                <option key={v.version} value={String(v.version)}>
                  {v.version}
                </option>
              ))}
            </select>
          </div>
          <div class="actions">
            <button type="submit" disabled={busy}>
              Show changes
            </button>
          </div>
        </form>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {diff && <DiffView diff={diff} />}
    </section>
  );
}

function DiffView({ diff }: { diff: VersionDiff }) {
  const none = !diff.added.length && !diff.removed.length && !diff.changed.length && !diff.impression;
  return (
    <section class="diff" aria-label={`Changes from version ${diff.from} to version ${diff.to}`} aria-live="polite">
      <h3>
        Changes from version {diff.from} to version {diff.to}
      </h3>
      {none && <p class="empty">No differences.</p>}
      <ul>
        {diff.impression && (
          <li>
            Impression: <del>{show(diff.impression.from)}</del> <ins>{show(diff.impression.to)}</ins>
          </li>
        )}
        {diff.added.map((f) => (
          <li key={f.tracking_uid}>
            Finding {f.number} added: <ins>{f.description}</ins>
          </li>
        ))}
        {diff.removed.map((f) => (
          <li key={f.tracking_uid}>
            Finding {f.number} removed: <del>{f.description}</del>
          </li>
        ))}
        {diff.changed.map((c) => (
          <li key={c.tracking_uid}>
            Finding {c.to_number}
            {c.from_number !== c.to_number ? ` (was ${c.from_number})` : ''}:
            <ul>
              {Object.entries(c.fields).map(([name, d]) => (
                <li key={name}>
                  {name.replace(/_/g, ' ')}: <del>{show(d.from)}</del> <ins>{show(d.to)}</ins>
                </li>
              ))}
            </ul>
          </li>
        ))}
      </ul>
    </section>
  );
}
