import { useState } from 'preact/hooks';
import { dateTime } from '../../lib/format';
import {
  count,
  EditDeleteButtons,
  Field,
  FormAlert,
  formErrors,
  list,
  LoadState,
  message,
  NO_ERRORS,
  Outcome,
  sendJson,
  useConfirm,
  useLoad,
  type FormErrors,
} from './common';
import type { NodeView } from './nodes';

/**
 * Forwarding and jobs (nodes:manage): the forwarding rules (create, edit, delete), the forward
 * queue (counts per status, failed sends with their reason, retry) and the one job runner's queue
 * (depth by kind and status, failed jobs = dead letters with their last error, retry).
 */

const SOURCES = ['dimse', 'stow', 'upload', 'import', 'ai'] as const;

interface RuleMatch {
  modalities?: string[];
  callingAeTitles?: string[];
  sources?: string[];
  aiResults?: boolean;
  sopClassUids?: string[];
}

interface Rule {
  id: number;
  name: string;
  enabled: boolean;
  node_id: number;
  match: RuleMatch;
}

export function ForwardingSection() {
  return (
    <div>
      <Rules />
      <ForwardQueue />
      <JobQueue />
    </div>
  );
}

function matchText(m: RuleMatch): string {
  const parts = [
    m.modalities?.length ? `modality ${m.modalities.join(', ')}` : '',
    m.callingAeTitles?.length ? `from ${m.callingAeTitles.join(', ')}` : '',
    m.sources?.length ? `source ${m.sources.join(', ')}` : '',
    m.sopClassUids?.length ? `${m.sopClassUids.length} SOP classes` : '',
    m.aiResults ? 'AI results only' : '',
  ].filter(Boolean);
  return parts.join('; ') || 'everything';
}

function Rules() {
  const rules = useLoad<{ items: Rule[] }>('/api/forwarding/rules', 'list the rules');
  const nodes = useLoad<{ items: NodeView[] }>('/api/nodes', 'list the nodes');
  const [panel, setPanel] = useState<{ rule?: Rule } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [confirm, dialog] = useConfirm();
  const nodeName = (id: number) => nodes.data?.items.find((n) => n.id === id)?.ae_title ?? `node ${id}`;
  const done = (text: string) => {
    setPanel(null);
    setNotice(text);
    void rules.reload();
  };
  const remove = async (r: Rule) => {
    setFailure(null);
    if (!(await confirm(`Delete the rule "${r.name}"? Studies stop being sent to ${nodeName(r.node_id)} by it.`, 'Delete rule'))) return;
    try {
      await sendJson(`/api/forwarding/rules/${r.id}`, 'DELETE');
      done(`Rule "${r.name}" deleted.`);
    } catch (err) {
      setFailure(message(err, 'delete the rule'));
    }
  };

  return (
    <section aria-labelledby="rules-title">
      <div class="title-row">
        <h3 id="rules-title">Forwarding rules</h3>
        <button
          type="button"
          disabled={!nodes.data?.items.length}
          title={nodes.data?.items.length ? undefined : 'Add a remote node first'}
          onClick={() => (setNotice(null), setPanel({}))}
        >
          New rule
        </button>
      </div>
      {nodes.data && nodes.data.items.length === 0 && <p class="note">A rule sends to a remote node: add one under DICOM nodes first.</p>}
      <Outcome notice={notice} failure={failure} />
      {panel && nodes.data && (
        <RuleForm key={panel.rule?.id ?? 'new'} rule={panel.rule} nodes={nodes.data.items} onDone={done} onCancel={() => setPanel(null)} />
      )}
      <LoadState res={rules} what="the rules">
        {(d) =>
          d.items.length === 0 ? (
            <p class="empty">No forwarding rules: nothing is sent on.</p>
          ) : (
            <div class="table-wrap">
              <table class="grid">
                <caption class="sr-only">Forwarding rules</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Sends to</th>
                    <th scope="col">Matches</th>
                    <th scope="col">State</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {d.items.map((r) => (
                    <tr key={r.id} data-rule={r.name}>
                      <td>{r.name}</td>
                      <td>{nodeName(r.node_id)}</td>
                      <td>{matchText(r.match)}</td>
                      <td>
                        <span class={`badge ${r.enabled ? 'ok' : ''}`}>{r.enabled ? 'enabled' : 'off'}</span>
                      </td>
                      <td class="row-actions">
                        <EditDeleteButtons
                          label={`rule ${r.name}`}
                          onEdit={() => (setNotice(null), setPanel({ rule: r }))}
                          onDelete={() => void remove(r)}
                        />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </LoadState>
      {dialog}
    </section>
  );
}

function RuleForm({
  rule,
  nodes,
  onDone,
  onCancel,
}: {
  rule?: Rule;
  nodes: NodeView[];
  onDone: (t: string) => void;
  onCancel: () => void;
}) {
  const [v, setV] = useState({
    name: rule?.name ?? '',
    node_id: String(rule?.node_id ?? nodes[0]?.id ?? ''),
    enabled: rule?.enabled ?? true,
    modalities: rule?.match.modalities?.join(', ') ?? '',
    callers: rule?.match.callingAeTitles?.join(', ') ?? '',
    sources: rule?.match.sources ?? [],
    aiResults: rule?.match.aiResults ?? false,
  });
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const text = (k: 'name' | 'node_id' | 'modalities' | 'callers') => ({
    value: v[k],
    onInput: (e: Event) => setV({ ...v, [k]: (e.currentTarget as HTMLInputElement).value }),
  });
  const toggleSource = (s: string, on: boolean) => setV({ ...v, sources: on ? [...v.sources, s] : v.sources.filter((x) => x !== s) });

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!v.name.trim()) return setErrors({ fields: { name: 'Name the rule.' }, form: 'Check the fields marked below.' });
    const match: RuleMatch = {
      ...(list(v.modalities).length ? { modalities: list(v.modalities).map((m) => m.toUpperCase()) } : {}),
      ...(list(v.callers).length ? { callingAeTitles: list(v.callers) } : {}),
      ...(v.sources.length ? { sources: v.sources } : {}),
      ...(v.aiResults ? { aiResults: true } : {}),
      ...(rule?.match.sopClassUids ? { sopClassUids: rule.match.sopClassUids } : {}),
    };
    const body = { name: v.name.trim(), enabled: v.enabled, node_id: Number(v.node_id), match };
    try {
      if (rule) await sendJson(`/api/forwarding/rules/${rule.id}`, 'PUT', body);
      else await sendJson('/api/forwarding/rules', 'POST', body);
      onDone(`Rule "${body.name}" ${rule ? 'saved' : 'created'}.`);
    } catch (err) {
      const out = formErrors(err, 'save the rule');
      // The match criteria arrive as match.<field>: show them at the criteria.
      setErrors(out);
    }
  };

  const title = rule ? `Edit rule ${rule.name}` : 'New forwarding rule';
  return (
    <form class="panel" onSubmit={submit} aria-label={title} noValidate>
      <h3>{title}</h3>
      <FormAlert errors={errors} />
      <div class="form-grid">
        <Field id="r-name" label="Rule name" error={errors.fields.name}>
          {(a) => <input {...a} maxLength={128} required {...text('name')} />}
        </Field>
        <Field id="r-node" label="Send to" error={errors.fields.node_id}>
          {(a) => (
            <select {...a} {...text('node_id')}>
              {nodes.map((n) => (
                <option key={n.id} value={String(n.id)}>
                  {n.ae_title} ({n.host}:{n.port})
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field id="r-modalities" label="Modalities" error={errors.fields.match} hint="Comma-separated, e.g. CT, MR; empty: any">
          {(a) => <input {...a} {...text('modalities')} />}
        </Field>
        <Field id="r-callers" label="Calling AE titles" hint="Comma-separated; empty: any sender">
          {(a) => <input {...a} {...text('callers')} />}
        </Field>
      </div>
      <fieldset class="checks">
        <legend>Arrived by (none ticked: any)</legend>
        {SOURCES.map((s) => (
          <label key={s}>
            <input
              type="checkbox"
              checked={v.sources.includes(s)}
              onChange={(e) => toggleSource(s, (e.currentTarget as HTMLInputElement).checked)}
            />{' '}
            {s}
          </label>
        ))}
      </fieldset>
      <div class="checks">
        <label>
          <input
            type="checkbox"
            checked={v.aiResults}
            onChange={(e) => setV({ ...v, aiResults: (e.currentTarget as HTMLInputElement).checked })}
          />{' '}
          Only the node's AI results (SR, PDF)
        </label>
        <label>
          <input
            type="checkbox"
            checked={v.enabled}
            onChange={(e) => setV({ ...v, enabled: (e.currentTarget as HTMLInputElement).checked })}
          />{' '}
          Enabled
        </label>
      </div>
      <div class="actions">
        <button type="submit">{rule ? 'Save' : 'Create rule'}</button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

interface ForwardItem {
  id: number;
  node_id: number;
  study_instance_uid: string;
  status: string;
  attempts: number;
  last_error: string | null;
  created_at: string;
}

function ForwardQueue() {
  const [status, setStatus] = useState('failed');
  const res = useLoad<{ total: number; counts: Record<string, number>; items: ForwardItem[] }>(
    `/api/forwarding?limit=50${status ? `&status=${status}` : ''}`,
    'read the forward queue',
  );
  const [notice, setNotice] = useState<string | null>(null);
  const retry = async (i: ForwardItem) => {
    try {
      await sendJson(`/api/forwarding/${i.id}/retry`, 'POST');
      setNotice(`Send ${i.id} queued again.`);
    } catch (err) {
      setNotice(message(err, 'retry the send'));
    }
    void res.reload();
  };
  return (
    <section aria-labelledby="fq-title">
      <h3 id="fq-title">Forward queue</h3>
      {res.data && (
        <p class="figures">
          <span class="sr-only">Forward queue by status: </span>
          {Object.entries(res.data.counts).map(([k, n]) => (
            <span key={k} class={`badge ${k === 'failed' && n ? 'danger' : ''}`}>
              {k}: {count(n)}
            </span>
          ))}
        </p>
      )}
      <div class="filters inline">
        <label for="fq-status">Show</label>
        <select id="fq-status" value={status} onChange={(e) => setStatus((e.currentTarget as HTMLSelectElement).value)}>
          <option value="failed">Failed</option>
          <option value="queued">Queued</option>
          <option value="sending">Sending</option>
          <option value="sent">Sent</option>
          <option value="">All</option>
        </select>
      </div>
      <Outcome notice={notice} noticeClass="note" />
      <LoadState res={res} what="the forward queue">
        {(d) =>
          d.items.length === 0 ? (
            <p class="empty">No {status || ''} sends.</p>
          ) : (
            <div class="table-wrap">
              <table class="grid">
                <caption class="sr-only">Forwarded instances</caption>
                <thead>
                  <tr>
                    <th scope="col">Id</th>
                    <th scope="col">Node</th>
                    <th scope="col">State</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Last error</th>
                    <th scope="col">Queued</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {d.items.map((i) => (
                    <tr key={i.id}>
                      <td>{i.id}</td>
                      <td>{i.node_id}</td>
                      <td>{i.status}</td>
                      <td>{i.attempts}</td>
                      <td class="wrap">{i.last_error ?? ''}</td>
                      <td>{dateTime(i.created_at)}</td>
                      <td>
                        {i.status === 'failed' && (
                          <button type="button" class="secondary" aria-label={`Retry send ${i.id}`} onClick={() => void retry(i)}>
                            Retry
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </LoadState>
    </section>
  );
}

interface Job {
  id: number;
  kind: string;
  status: string;
  attempts: number;
  max_attempts: number;
  error: string | null;
  dead_letter: boolean;
  updated_at: string;
}

interface JobPage {
  depth: Array<{ kind: string; status: string; count: number }>;
  items: Job[];
  next_cursor: number | null;
}

const JOB_STATUSES = ['pending', 'running', 'failed', 'succeeded', 'cancelled'];

function JobQueue() {
  const [status, setStatus] = useState('failed');
  const [kind, setKind] = useState('');
  const [cursors, setCursors] = useState<number[]>([]);
  const q = new URLSearchParams({ limit: '25' });
  if (status) q.set('status', status);
  if (kind) q.set('kind', kind);
  const cursor = cursors.at(-1);
  if (cursor) q.set('cursor', String(cursor));
  const res = useLoad<JobPage>(`/api/jobs?${q}`, 'read the job queue');
  const [notice, setNotice] = useState<string | null>(null);

  const kinds = [...new Set(res.data?.depth.map((d) => d.kind) ?? [])].sort();
  const depthOf = (k: string, s: string) => res.data?.depth.find((d) => d.kind === k && d.status === s)?.count ?? 0;
  const retry = async (j: Job) => {
    try {
      await sendJson(`/api/jobs/${j.id}/retry`, 'POST');
      setNotice(`Job ${j.id} (${j.kind}) queued again.`);
    } catch (err) {
      setNotice(message(err, 'retry the job'));
    }
    void res.reload();
  };

  return (
    <section aria-labelledby="jobs-title">
      <h3 id="jobs-title">Job queue</h3>
      {res.data && kinds.length > 0 && (
        <div class="table-wrap">
          <table class="grid compact">
            <caption>Queue depth by kind and status</caption>
            <thead>
              <tr>
                <th scope="col">Kind</th>
                {JOB_STATUSES.map((s) => (
                  <th key={s} scope="col" class="num">
                    {s}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {kinds.map((k) => (
                <tr key={k}>
                  <th scope="row">{k}</th>
                  {JOB_STATUSES.map((s) => (
                    <td key={s} class={`num ${s === 'failed' && depthOf(k, s) ? 'bad' : ''}`}>
                      {count(depthOf(k, s))}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div class="filters inline">
        <label for="jobs-status">Status</label>
        <select id="jobs-status" value={status} onChange={(e) => (setCursors([]), setStatus((e.currentTarget as HTMLSelectElement).value))}>
          <option value="failed">Failed (dead letters)</option>
          {JOB_STATUSES.filter((s) => s !== 'failed').map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
          <option value="">All</option>
        </select>
        <label for="jobs-kind">Kind</label>
        <select id="jobs-kind" value={kind} onChange={(e) => (setCursors([]), setKind((e.currentTarget as HTMLSelectElement).value))}>
          <option value="">All kinds</option>
          {kinds.map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </div>
      <Outcome notice={notice} noticeClass="note" />
      <LoadState res={res} what="the jobs">
        {(d) =>
          d.items.length === 0 ? (
            <p class="empty">No {status || ''} jobs.</p>
          ) : (
            <>
              <div class="table-wrap">
                <table class="grid">
                  <caption class="sr-only">Jobs</caption>
                  <thead>
                    <tr>
                      <th scope="col">Id</th>
                      <th scope="col">Kind</th>
                      <th scope="col">State</th>
                      <th scope="col">Attempts</th>
                      <th scope="col">Last error</th>
                      <th scope="col">Updated</th>
                      <th scope="col">Actions</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.items.map((j) => (
                      <tr key={j.id} data-job={j.id}>
                        <td>{j.id}</td>
                        <td>{j.kind}</td>
                        <td>
                          <span class={`badge ${j.dead_letter ? 'danger' : ''}`}>{j.status}</span>
                        </td>
                        <td>
                          {j.attempts}/{j.max_attempts}
                        </td>
                        <td class="wrap">{j.error ?? ''}</td>
                        <td>{dateTime(j.updated_at)}</td>
                        <td>
                          {j.dead_letter && (
                            <button type="button" class="secondary" aria-label={`Retry job ${j.id}`} onClick={() => void retry(j)}>
                              Retry
                            </button>
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <nav class="pager" aria-label="Job pages">
                <button type="button" class="secondary" disabled={!cursors.length} onClick={() => setCursors(cursors.slice(0, -1))}>
                  Newer jobs
                </button>
                <button
                  type="button"
                  class="secondary"
                  disabled={!d.next_cursor}
                  onClick={() => d.next_cursor && setCursors([...cursors, d.next_cursor])}
                >
                  Older jobs
                </button>
              </nav>
            </>
          )
        }
      </LoadState>
    </section>
  );
}
