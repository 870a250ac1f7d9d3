import { useState } from 'preact/hooks';
import { dateTime } from '../../lib/format';
import {
  CheckAnswer,
  EditDeleteButtons,
  Field,
  FormAlert,
  formErrors,
  LoadState,
  message,
  NO_ERRORS,
  Outcome,
  sendJson,
  useConfirm,
  useLoad,
  type CheckResult,
  type FormErrors,
} from './common';

/**
 * Hospital integrations (nodes:manage): HL7 v2 RIS endpoints over MLLP and FHIR servers: list,
 * create, edit, delete, a test button, and each one's delivery log with its dead letters and retry.
 */

interface Integration {
  id: number;
  name: string;
  kind: 'hl7-mllp' | 'fhir';
  enabled: boolean;
  triggers: string[];
  timeout_ms: number;
  host?: string;
  port?: number;
  tls?: boolean;
  receiving_application?: string | null;
  receiving_facility?: string | null;
  base_url?: string;
  bearer_token_set?: boolean;
}

interface TestOutcome {
  ok: boolean;
  code: string | null;
  detail: string | null;
  ms: number;
}

function target(i: Integration): string {
  return i.kind === 'fhir' ? (i.base_url ?? '') : `${i.host}:${i.port}${i.tls ? ' (TLS)' : ''}`;
}

export function IntegrationsSection() {
  const res = useLoad<{ items: Integration[] }>('/api/integrations', 'list the integrations');
  const [panel, setPanel] = useState<{ item?: Integration } | null>(null);
  const [log, setLog] = useState<Integration | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [tests, setTests] = useState<Record<number, CheckResult>>({});
  const [confirm, dialog] = useConfirm();

  const done = (text: string) => {
    setPanel(null);
    setNotice(text);
    void res.reload();
  };
  const test = async (i: Integration) => {
    setTests((t) => ({ ...t, [i.id]: { busy: true } }));
    try {
      const r = await sendJson<TestOutcome>(`/api/integrations/${i.id}/test`, 'POST');
      const text = `${r.ok ? 'Test succeeded' : 'Test failed'} in ${r.ms} ms${r.code ? ` (${r.code})` : ''}${r.detail ? `: ${r.detail}` : ''}`;
      setTests((t) => ({ ...t, [i.id]: { busy: false, ok: r.ok, text } }));
    } catch (err) {
      setTests((t) => ({ ...t, [i.id]: { busy: false, ok: false, text: message(err, 'test the integration') } }));
    }
  };
  const remove = async (i: Integration) => {
    setFailure(null);
    if (!(await confirm(`Delete the integration "${i.name}"? Results stop going to ${target(i)}.`, 'Delete integration'))) return;
    try {
      await sendJson(`/api/integrations/${i.id}`, 'DELETE');
      if (log?.id === i.id) setLog(null);
      done(`Integration "${i.name}" deleted.`);
    } catch (err) {
      setFailure(message(err, 'delete the integration'));
    }
  };

  return (
    <div>
      <div class="section-actions">
        <button type="button" onClick={() => (setNotice(null), setPanel({}))}>
          New integration
        </button>
      </div>
      <Outcome notice={notice} failure={failure} />
      {panel && <IntegrationForm key={panel.item?.id ?? 'new'} item={panel.item} onDone={done} onCancel={() => setPanel(null)} />}
      <LoadState res={res} what="the integrations">
        {(d) =>
          d.items.length === 0 ? (
            <p class="empty">No integrations: results reach DICOM peers only. Add the RIS (HL7 v2) or the EHR (FHIR).</p>
          ) : (
            <div class="table-wrap">
              <table class="grid">
                <caption class="sr-only">Integrations</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Kind</th>
                    <th scope="col">Endpoint</th>
                    <th scope="col">Sends on</th>
                    <th scope="col">State</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {d.items.map((i) => {
                    const t = tests[i.id];
                    return (
                      <tr key={i.id} data-integration={i.name}>
                        <td>{i.name}</td>
                        <td>{i.kind === 'fhir' ? 'FHIR R4' : 'HL7 v2 (MLLP)'}</td>
                        <td class="wrap">{target(i)}</td>
                        <td>{i.triggers.join(', ')}</td>
                        <td>
                          <span class={`badge ${i.enabled ? 'ok' : ''}`}>{i.enabled ? 'enabled' : 'off'}</span>
                        </td>
                        <td class="row-actions">
                          <button type="button" aria-label={`Test ${i.name}`} disabled={t?.busy} onClick={() => void test(i)}>
                            {t?.busy ? 'Testing…' : 'Test'}
                          </button>
                          <button type="button" class="secondary" aria-label={`Deliveries of ${i.name}`} onClick={() => setLog(i)}>
                            Deliveries
                          </button>
                          <EditDeleteButtons
                            label={i.name}
                            onEdit={() => (setNotice(null), setPanel({ item: i }))}
                            onDelete={() => void remove(i)}
                          />
                          <CheckAnswer result={t} />
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )
        }
      </LoadState>
      {log && <Deliveries key={log.id} item={log} onClose={() => setLog(null)} />}
      {dialog}
    </div>
  );
}

function IntegrationForm({ item, onDone, onCancel }: { item?: Integration; onDone: (t: string) => void; onCancel: () => void }) {
  const [v, setV] = useState({
    kind: item?.kind ?? 'hl7-mllp',
    name: item?.name ?? '',
    enabled: item?.enabled ?? true,
    draft: item?.triggers.includes('draft') ?? false,
    timeout_ms: String(item?.timeout_ms ?? 10_000),
    host: item?.host ?? '',
    port: item?.port ? String(item.port) : '2575',
    tls: item?.tls ?? false,
    receiving_application: item?.receiving_application ?? '',
    receiving_facility: item?.receiving_facility ?? '',
    base_url: item?.base_url ?? '',
    bearer_token: '',
  });
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [busy, setBusy] = useState(false);
  type TextKey =
    | 'kind'
    | 'name'
    | 'timeout_ms'
    | 'host'
    | 'port'
    | 'receiving_application'
    | 'receiving_facility'
    | 'base_url'
    | 'bearer_token';
  const text = (k: TextKey) => ({
    value: v[k],
    onInput: (e: Event) => setV({ ...v, [k]: (e.currentTarget as HTMLInputElement).value }),
  });
  const hl7 = v.kind === 'hl7-mllp';

  const submit = async (e: Event) => {
    e.preventDefault();
    const fields: Record<string, string> = {};
    if (!v.name.trim()) fields.name = 'Name the integration.';
    if (hl7 && !v.host.trim()) fields.host = 'Enter the RIS host name or IP address.';
    const port = Number(v.port);
    if (hl7 && (!Number.isInteger(port) || port < 1 || port > 65535)) fields.port = 'A port between 1 and 65535.';
    if (!hl7 && !/^https?:\/\/./.test(v.base_url.trim())) fields.base_url = 'An http(s) URL, e.g. https://fhir.example.org/r4';
    const timeout = Number(v.timeout_ms);
    if (!Number.isInteger(timeout) || timeout < 100 || timeout > 60_000) fields.timeout_ms = 'Between 100 and 60 000 ms.';
    if (Object.keys(fields).length) return setErrors({ fields, form: 'Check the fields marked below.' });
    const common = { name: v.name.trim(), enabled: v.enabled, triggers: v.draft ? ['sign', 'draft'] : ['sign'], timeout_ms: timeout };
    const specific = hl7
      ? {
          host: v.host.trim(),
          port,
          tls: v.tls,
          receiving_application: v.receiving_application.trim() || null,
          receiving_facility: v.receiving_facility.trim() || null,
        }
      : { base_url: v.base_url.trim(), ...(v.bearer_token ? { bearer_token: v.bearer_token } : {}) };
    setBusy(true);
    try {
      if (item) await sendJson(`/api/integrations/${item.id}`, 'PUT', { ...common, ...specific });
      else await sendJson('/api/integrations', 'POST', { kind: v.kind, ...common, ...specific });
      onDone(`Integration "${common.name}" ${item ? 'saved' : 'created'}.`);
    } catch (err) {
      setErrors(formErrors(err, 'save the integration'));
    } finally {
      setBusy(false);
    }
  };

  const title = item ? `Edit integration ${item.name}` : 'New integration';
  return (
    <form class="panel" onSubmit={submit} aria-label={title} noValidate>
      <h3>{title}</h3>
      <FormAlert errors={errors} />
      <div class="form-grid">
        <Field id="i-kind" label="Kind" error={errors.fields.kind}>
          {(a) => (
            <select {...a} disabled={!!item} {...text('kind')}>
              <option value="hl7-mllp">HL7 v2 ORU^R01 over MLLP (RIS)</option>
              <option value="fhir">FHIR R4 server (EHR)</option>
            </select>
          )}
        </Field>
        <Field id="i-name" label="Name" error={errors.fields.name}>
          {(a) => <input {...a} maxLength={128} required {...text('name')} />}
        </Field>
        {hl7 ? (
          <>
            <Field id="i-host" label="Host" error={errors.fields.host}>
              {(a) => <input {...a} maxLength={255} required {...text('host')} />}
            </Field>
            <Field id="i-port" label="Port" error={errors.fields.port}>
              {(a) => <input {...a} type="number" min={1} max={65535} required {...text('port')} />}
            </Field>
            <Field id="i-app" label="Receiving application (MSH-5)" error={errors.fields.receiving_application}>
              {(a) => <input {...a} maxLength={227} {...text('receiving_application')} />}
            </Field>
            <Field id="i-facility" label="Receiving facility (MSH-6)" error={errors.fields.receiving_facility}>
              {(a) => <input {...a} maxLength={227} {...text('receiving_facility')} />}
            </Field>
          </>
        ) : (
          <>
            <Field id="i-url" label="Base URL" error={errors.fields.base_url}>
              {(a) => <input {...a} type="url" maxLength={1024} required {...text('base_url')} />}
            </Field>
            <Field
              id="i-token"
              label="Bearer token"
              error={errors.fields.bearer_token}
              hint={item?.bearer_token_set ? 'Set; type to replace (never shown)' : 'Optional, never shown again'}
            >
              {(a) => <input {...a} type="password" autoComplete="off" {...text('bearer_token')} />}
            </Field>
          </>
        )}
        <Field id="i-timeout" label="Timeout (ms)" error={errors.fields.timeout_ms}>
          {(a) => <input {...a} type="number" min={100} max={60000} {...text('timeout_ms')} />}
        </Field>
      </div>
      <div class="checks">
        {hl7 && (
          <label>
            <input type="checkbox" checked={v.tls} onChange={(e) => setV({ ...v, tls: (e.currentTarget as HTMLInputElement).checked })} />{' '}
            TLS
          </label>
        )}
        <label>
          <input type="checkbox" checked={v.draft} onChange={(e) => setV({ ...v, draft: (e.currentTarget as HTMLInputElement).checked })} />{' '}
          Also send AI drafts when published (always: signed and amended reports)
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
        <button type="submit" disabled={busy}>
          {item ? 'Save' : 'Create integration'}
        </button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

interface Delivery {
  id: number;
  report_id: number;
  report_version: number;
  trigger: string;
  status: string;
  dead_letter: boolean;
  attempts: number;
  response_code: string | null;
  response: string | null;
  error: string | null;
  created_at: string;
  last_attempt_at: string | null;
}

function Deliveries({ item, onClose }: { item: Integration; onClose: () => void }) {
  const [status, setStatus] = useState('');
  const res = useLoad<{ total: number; items: Delivery[] }>(
    `/api/integrations/${item.id}/deliveries?limit=50${status ? `&status=${status}` : ''}`,
    'read the delivery log',
  );
  const [notice, setNotice] = useState<string | null>(null);
  const retry = async (d: Delivery) => {
    try {
      await sendJson(`/api/integrations/${item.id}/deliveries/${d.id}/retry`, 'POST');
      setNotice(`Delivery ${d.id} queued again.`);
    } catch (err) {
      setNotice(message(err, 'retry the delivery'));
    }
    void res.reload();
  };
  return (
    <section class="panel" aria-labelledby="deliveries-title">
      <div class="title-row">
        <h3 id="deliveries-title">Deliveries of {item.name}</h3>
        <button type="button" class="secondary" onClick={onClose}>
          Close
        </button>
      </div>
      <div class="filters inline">
        <label for="d-status">Show</label>
        <select id="d-status" value={status} onChange={(e) => setStatus((e.currentTarget as HTMLSelectElement).value)}>
          <option value="">All</option>
          <option value="failed">Dead letters (failed)</option>
          <option value="queued">Queued</option>
          <option value="delivered">Delivered</option>
        </select>
      </div>
      <Outcome notice={notice} noticeClass="note" />
      <LoadState res={res} what="the delivery log">
        {(d) =>
          d.items.length === 0 ? (
            <p class="empty">No deliveries{status ? ` ${status}` : ''} yet.</p>
          ) : (
            <div class="table-wrap">
              <table class="grid">
                <caption class="sr-only">Deliveries</caption>
                <thead>
                  <tr>
                    <th scope="col">Id</th>
                    <th scope="col">Report</th>
                    <th scope="col">On</th>
                    <th scope="col">State</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Answer</th>
                    <th scope="col">Last attempt</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {d.items.map((x) => (
                    <tr key={x.id}>
                      <td>{x.id}</td>
                      <td>
                        {x.report_id} v{x.report_version}
                      </td>
                      <td>{x.trigger}</td>
                      <td>
                        <span class={`badge ${x.dead_letter ? 'danger' : x.status === 'delivered' ? 'ok' : 'warn'}`}>
                          {x.dead_letter ? 'failed (dead letter)' : x.status}
                        </span>
                      </td>
                      <td>{x.attempts}</td>
                      <td class="wrap">{[x.response_code, x.error ?? x.response].filter(Boolean).join(': ')}</td>
                      <td>{dateTime(x.last_attempt_at) || '—'}</td>
                      <td>
                        {x.dead_letter && (
                          <button type="button" class="secondary" aria-label={`Retry delivery ${x.id}`} onClick={() => void retry(x)}>
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
