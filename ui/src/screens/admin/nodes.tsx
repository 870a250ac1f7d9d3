import { useState } from 'preact/hooks';
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

/** Remote DICOM nodes (nodes:manage): list, create, edit, delete, and a C-ECHO with its outcome. */

export interface NodeView {
  id: number;
  ae_title: string;
  host: string;
  port: number;
  tls: boolean;
  description: string | null;
  allow_query_retrieve: boolean;
  stow_url: string | null;
  stow_authorization_set: boolean;
}

interface EchoResult {
  ok: boolean;
  status?: number;
  ms: number;
  error?: string;
}

export function NodesSection() {
  const res = useLoad<{ items: NodeView[] }>('/api/nodes', 'list the nodes');
  const [panel, setPanel] = useState<{ node?: NodeView } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [echo, setEcho] = useState<Record<number, CheckResult>>({});
  const [confirm, dialog] = useConfirm();

  const done = (text: string) => {
    setPanel(null);
    setNotice(text);
    void res.reload();
  };
  const runEcho = async (n: NodeView) => {
    setEcho((e) => ({ ...e, [n.id]: { busy: true } }));
    try {
      const r = await sendJson<EchoResult>(`/api/nodes/${n.id}/echo`, 'POST');
      const text = r.ok ? `C-ECHO succeeded in ${r.ms} ms` : `C-ECHO failed: ${r.error ?? `status 0x${(r.status ?? 0).toString(16)}`}`;
      setEcho((e) => ({ ...e, [n.id]: { busy: false, ok: r.ok, text } }));
    } catch (err) {
      setEcho((e) => ({ ...e, [n.id]: { busy: false, ok: false, text: message(err, 'C-ECHO the node') } }));
    }
  };
  const remove = async (n: NodeView) => {
    setFailure(null);
    if (!(await confirm(`Delete the node ${n.ae_title} (${n.host}:${n.port})? Rules that send to it stop.`, 'Delete node'))) return;
    try {
      await sendJson(`/api/nodes/${n.id}`, 'DELETE');
      done(`Node ${n.ae_title} deleted.`);
    } catch (err) {
      setFailure(message(err, 'delete the node'));
    }
  };

  return (
    <div>
      <div class="section-actions">
        <button type="button" onClick={() => (setNotice(null), setPanel({}))}>
          New node
        </button>
      </div>
      <Outcome notice={notice} failure={failure} />
      {panel && <NodeForm key={panel.node?.id ?? 'new'} node={panel.node} onDone={done} onCancel={() => setPanel(null)} />}
      <LoadState res={res} what="the nodes">
        {(d) =>
          d.items.length === 0 ? (
            <p class="empty">No remote nodes yet: add the PACS, modalities and workstations this node talks to.</p>
          ) : (
            <div class="table-wrap">
              <table class="grid">
                <caption class="sr-only">Remote DICOM nodes</caption>
                <thead>
                  <tr>
                    <th scope="col">AE title</th>
                    <th scope="col">Address</th>
                    <th scope="col">Description</th>
                    <th scope="col">Query/retrieve</th>
                    <th scope="col">STOW-RS</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {d.items.map((n) => {
                    const e = echo[n.id];
                    return (
                      <tr key={n.id} data-node={n.ae_title}>
                        <td>{n.ae_title}</td>
                        <td>
                          {n.host}:{n.port}
                          {n.tls ? ' (TLS)' : ''}
                        </td>
                        <td>{n.description ?? ''}</td>
                        <td>{n.allow_query_retrieve ? 'allowed' : 'no'}</td>
                        <td>{n.stow_url ? `${n.stow_url}${n.stow_authorization_set ? ' (credentials set)' : ''}` : '—'}</td>
                        <td class="row-actions">
                          <button type="button" aria-label={`C-ECHO ${n.ae_title}`} disabled={e?.busy} onClick={() => void runEcho(n)}>
                            {e?.busy ? 'Echoing…' : 'C-ECHO'}
                          </button>
                          <EditDeleteButtons
                            label={n.ae_title}
                            onEdit={() => (setNotice(null), setPanel({ node: n }))}
                            onDelete={() => void remove(n)}
                          />
                          <CheckAnswer result={e} />
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
      {dialog}
    </div>
  );
}

function NodeForm({ node, onDone, onCancel }: { node?: NodeView; onDone: (t: string) => void; onCancel: () => void }) {
  const [v, setV] = useState({
    ae_title: node?.ae_title ?? '',
    host: node?.host ?? '',
    port: node ? String(node.port) : '104',
    tls: node?.tls ?? false,
    description: node?.description ?? '',
    allow_query_retrieve: node?.allow_query_retrieve ?? true,
    stow_url: node?.stow_url ?? '',
    stow_authorization: '',
  });
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [busy, setBusy] = useState(false);
  const text = (k: 'ae_title' | 'host' | 'port' | 'description' | 'stow_url' | 'stow_authorization') => ({
    value: v[k],
    onInput: (e: Event) => setV({ ...v, [k]: (e.currentTarget as HTMLInputElement).value }),
  });
  const check = (k: 'tls' | 'allow_query_retrieve') => ({
    checked: v[k],
    onChange: (e: Event) => setV({ ...v, [k]: (e.currentTarget as HTMLInputElement).checked }),
  });

  const submit = async (e: Event) => {
    e.preventDefault();
    const fields: Record<string, string> = {};
    if (!v.ae_title.trim()) fields.ae_title = 'Enter the AE title (up to 16 characters).';
    if (!v.host.trim()) fields.host = 'Enter a host name or IP address.';
    const port = Number(v.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) fields.port = 'A port between 1 and 65535.';
    if (Object.keys(fields).length) return setErrors({ fields, form: 'Check the fields marked below.' });
    const body = {
      ae_title: v.ae_title.trim(),
      host: v.host.trim(),
      port,
      tls: v.tls,
      description: v.description.trim() || null,
      allow_query_retrieve: v.allow_query_retrieve,
      stow_url: v.stow_url.trim() || null,
      // Credentials are never read back: sent only when typed.
      ...(v.stow_authorization ? { stow_authorization: v.stow_authorization } : {}),
    };
    setBusy(true);
    try {
      if (node) await sendJson(`/api/nodes/${node.id}`, 'PUT', body);
      else await sendJson('/api/nodes', 'POST', body);
      onDone(`Node ${body.ae_title} ${node ? 'saved' : 'added'}.`);
    } catch (err) {
      setErrors(formErrors(err, 'save the node'));
    } finally {
      setBusy(false);
    }
  };

  const title = node ? `Edit node ${node.ae_title}` : 'New node';
  return (
    <form class="panel" onSubmit={submit} aria-label={title} noValidate>
      <h3>{title}</h3>
      <FormAlert errors={errors} />
      <div class="form-grid">
        <Field id="n-ae" label="AE title" error={errors.fields.ae_title}>
          {(a) => <input {...a} maxLength={16} required {...text('ae_title')} />}
        </Field>
        <Field id="n-host" label="Host" error={errors.fields.host}>
          {(a) => <input {...a} maxLength={255} required {...text('host')} />}
        </Field>
        <Field id="n-port" label="Port" error={errors.fields.port}>
          {(a) => <input {...a} type="number" min={1} max={65535} required {...text('port')} />}
        </Field>
        <Field id="n-description" label="Description" error={errors.fields.description}>
          {(a) => <input {...a} maxLength={255} {...text('description')} />}
        </Field>
        <Field id="n-stow" label="STOW-RS URL" error={errors.fields.stow_url} hint="Optional: forward by DICOMweb instead of C-STORE">
          {(a) => <input {...a} type="url" maxLength={1024} {...text('stow_url')} />}
        </Field>
        <Field
          id="n-stow-auth"
          label="STOW-RS Authorization header"
          error={errors.fields.stow_authorization}
          hint={node?.stow_authorization_set ? 'Set; type to replace (never shown)' : 'Optional, never shown again'}
        >
          {(a) => <input {...a} type="password" autoComplete="off" {...text('stow_authorization')} />}
        </Field>
      </div>
      <div class="checks">
        <label>
          <input type="checkbox" {...check('tls')} /> TLS
        </label>
        <label>
          <input type="checkbox" {...check('allow_query_retrieve')} /> May query and retrieve from this node
        </label>
      </div>
      <div class="actions">
        <button type="submit" disabled={busy}>
          {node ? 'Save' : 'Add node'}
        </button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
