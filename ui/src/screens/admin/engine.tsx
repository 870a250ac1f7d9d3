import { useState } from 'preact/hooks';
import { dateTime } from '../../lib/format';
import { LoadState, message, sendJson, useLoad } from './common';

/**
 * The AI engine (its state, model identity with SHA-256 and whether it is validated, device,
 * queue, last errors, a test call with a synthetic image) and the auto-analysis settings, which
 * are read-only: the environment sets them and a restart changes them.
 */

interface EngineView {
  state: string;
  backend: string;
  error?: string;
  since: string;
  model?: { name: string; sha256: string | null; validated?: boolean; quantization: string | null };
  device: string;
  gpu_layers: number | null;
  max_concurrency: number;
  allow_unvalidated_model: boolean;
  queue: { pending: number; running: number; failed: number };
  last_errors: Array<{ job_id: number; error: string | null; at: string }>;
}

interface TestCall {
  ok: boolean;
  latency_ms: number;
  answer: unknown;
  error?: string;
  images_sent: number;
  backend: string;
}

export function EngineSection() {
  const res = useLoad<EngineView>('/api/engine', 'read the engine status');
  const [test, setTest] = useState<{ busy: boolean; result?: TestCall; error?: string }>({ busy: false });
  const run = async () => {
    setTest({ busy: true });
    try {
      setTest({ busy: false, result: await sendJson<TestCall>('/api/engine/test', 'POST') });
    } catch (err) {
      setTest({ busy: false, error: message(err, 'run a test call') });
    }
    void res.reload();
  };
  return (
    <LoadState res={res} what="the engine status">
      {(e) => (
        <div>
          <dl class="summary" aria-label="AI engine">
            <dt>State</dt>
            <dd>
              <span class={`badge ${e.state === 'ready' ? 'ok' : e.state === 'failed' ? 'danger' : 'warn'}`}>{e.state}</span> since{' '}
              {dateTime(e.since)}
              {e.error && <div class="field-error">{e.error}</div>}
            </dd>
            <dt>Backend</dt>
            <dd>{e.backend}</dd>
            <dt>Model</dt>
            <dd>{e.model ? `${e.model.name}${e.model.quantization ? ` (${e.model.quantization})` : ''}` : '—'}</dd>
            <dt>SHA-256</dt>
            <dd class="mono">{e.model?.sha256 ?? '—'}</dd>
            <dt>Validated</dt>
            <dd>
              {e.model?.validated === undefined ? (
                'unknown'
              ) : e.model.validated ? (
                <span class="badge ok">validated</span>
              ) : (
                <span class="badge danger">not validated{e.allow_unvalidated_model ? ' (allowed by configuration)' : ''}</span>
              )}
            </dd>
            <dt>Device</dt>
            <dd>
              {e.device}
              {e.gpu_layers !== null && e.gpu_layers !== undefined ? `, ${e.gpu_layers} GPU layers` : ''}, up to {e.max_concurrency} at once
            </dd>
            <dt>Analysis queue</dt>
            <dd>
              {e.queue.pending} pending, {e.queue.running} running, {e.queue.failed} failed
            </dd>
          </dl>
          <h3>Last errors</h3>
          {e.last_errors.length === 0 ? (
            <p class="empty">No failed analyses.</p>
          ) : (
            <ul class="errors-list">
              {e.last_errors.map((x) => (
                <li key={x.job_id}>
                  {dateTime(x.at)}, job {x.job_id}: {x.error ?? 'no reason recorded'}
                </li>
              ))}
            </ul>
          )}
          <h3>Test call</h3>
          <p class="note">Sends a small synthetic image (no patient data) and a short question.</p>
          <button type="button" onClick={() => void run()} disabled={test.busy}>
            {test.busy ? 'Calling the engine…' : 'Run a test call'}
          </button>
          <div aria-live="polite">
            {test.error && (
              <p class="error" role="alert">
                {test.error}
              </p>
            )}
            {test.result && (
              <div class={`test-result ${test.result.ok ? 'ok' : 'error'}`} role="status">
                <p>
                  {test.result.ok ? 'The engine answered' : 'The test call failed'} in {test.result.latency_ms} ms ({test.result.backend})
                  {test.result.error ? `: ${test.result.error}` : '.'}
                </p>
                {test.result.answer !== undefined && test.result.answer !== null && (
                  <pre class="answer">
                    {typeof test.result.answer === 'string' ? test.result.answer : JSON.stringify(test.result.answer, null, 2)}
                  </pre>
                )}
              </div>
            )}
          </div>
        </div>
      )}
    </LoadState>
  );
}

interface AutoSettings {
  auto_analyze: string;
  rules: Array<Record<string, unknown>> | null;
  auto_publish: boolean;
  stable_seconds: number;
  max_slices: number;
  allow_unvalidated_model: boolean;
  engine_backend: string;
  note: string;
}

export function AutoAnalysisSection() {
  const res = useLoad<AutoSettings>('/api/settings/auto-analysis', 'read the auto-analysis settings');
  return (
    <LoadState res={res} what="the auto-analysis settings">
      {(s) => (
        <div>
          <p class="note">{s.note}</p>
          <dl class="summary" aria-label="Auto-analysis settings">
            <dt>AUTO_ANALYZE</dt>
            <dd>{s.auto_analyze}</dd>
            <dt>AUTO_PUBLISH</dt>
            <dd>{s.auto_publish ? 'on: AI drafts are published as they are made' : 'off'}</dd>
            <dt>Study stable after</dt>
            <dd>{s.stable_seconds} s without new instances</dd>
            <dt>Slices sent at most</dt>
            <dd>{s.max_slices}</dd>
            <dt>Engine backend</dt>
            <dd>{s.engine_backend}</dd>
            <dt>Unvalidated model allowed</dt>
            <dd>{s.allow_unvalidated_model ? 'yes' : 'no'}</dd>
          </dl>
          {s.rules && (
            <>
              <h3>Rules</h3>
              {s.rules.length === 0 ? (
                <p class="empty">No rules: nothing is analysed automatically.</p>
              ) : (
                <div class="table-wrap">
                  <table class="grid">
                    <caption class="sr-only">Auto-analysis rules</caption>
                    <thead>
                      <tr>
                        <th scope="col">#</th>
                        <th scope="col">Criteria</th>
                      </tr>
                    </thead>
                    <tbody>
                      {s.rules.map((r, i) => (
                        <tr key={String(i)}>
                          <td>{i + 1}</td>
                          <td>
                            {Object.entries(r)
                              .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`)
                              .join('; ')}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
            </>
          )}
        </div>
      )}
    </LoadState>
  );
}
