import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../../api/client';

/**
 * What the administration sections share: loading a resource with its loading / error states,
 * sending JSON, field errors from the node's 400 details, a confirm dialog for destructive
 * actions, the outcome lines and row buttons every table has, and number formats.
 */

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => Promise<void>;
}

export function message(err: unknown, what: string): string {
  if (err instanceof ApiError) {
    if (err.status === 403) return `Your role may not ${what}.`;
    if (err.status >= 500) return `The node could not ${what} (${err.status}): ${err.message}`;
    return err.message;
  }
  return `The node could not be reached to ${what}.`;
}

/** GET path whenever it changes; reload() reads it again (quietly: the old data stays in view). */
export function useLoad<T>(path: string, what: string): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const current = useRef(path);
  current.current = path;
  const reload = useCallback(async () => {
    const asked = current.current;
    setLoading(true);
    try {
      const res = await api<T>(asked);
      if (asked !== current.current) return;
      setData(res);
      setError(null);
    } catch (err) {
      if (asked === current.current) setError(message(err, what));
    } finally {
      if (asked === current.current) setLoading(false);
    }
  }, [what]);
  useEffect(() => {
    void reload();
  }, [path, reload]);
  return { data, error, loading, reload };
}

/** The loading and error states of a resource; children render once it is there. */
export function LoadState<T>({ res, what, children }: { res: Loaded<T>; what: string; children: (data: T) => ComponentChildren }) {
  return (
    <>
      {res.error && (
        <p class="error" role="alert">
          {res.error}{' '}
          <button type="button" class="secondary" onClick={() => void res.reload()}>
            Retry
          </button>
        </p>
      )}
      {res.loading && !res.data && <p role="status">Loading {what}…</p>}
      {res.data && children(res.data)}
    </>
  );
}

export function sendJson<T>(path: string, method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', body?: unknown): Promise<T> {
  return api<T>(path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  });
}

/** A form's errors: per field (from the node's validation details) and for the form as a whole. */
export interface FormErrors {
  fields: Record<string, string>;
  form: string | null;
}

export const NO_ERRORS: FormErrors = { fields: {}, form: null };

export function formErrors(err: unknown, what: string): FormErrors {
  if (err instanceof ApiError && err.details?.length) {
    const fields: Record<string, string> = {};
    for (const d of err.details) fields[d.path.split('.')[0] || '_'] ??= d.message;
    return { fields, form: 'Check the fields marked below.' };
  }
  return { fields: {}, form: message(err, what) };
}

/**
 * A labelled form control with its error message tied to it (aria-describedby), so a screen
 * reader reads the error with the field.
 */
export function Field({
  id,
  label,
  error,
  hint,
  children,
}: {
  id: string;
  label: string;
  error?: string;
  hint?: string;
  children: (a11y: { id: string; 'aria-invalid'?: 'true'; 'aria-describedby'?: string }) => ComponentChildren;
}) {
  const described = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children({ id, ...(error ? { 'aria-invalid': 'true' as const } : {}), ...(described ? { 'aria-describedby': described } : {}) })}
      {hint && (
        <span class="hint" id={`${id}-hint`}>
          {hint}
        </span>
      )}
      {error && (
        <span class="field-error" id={`${id}-error`}>
          {error}
        </span>
      )}
    </div>
  );
}

export function FormAlert({ errors }: { errors: FormErrors }) {
  return errors.form ? (
    <p class="error" role="alert">
      {errors.form}
    </p>
  ) : null;
}

/**
 * A modal confirmation (the native <dialog>: focus moves into it, on Cancel, the first button, and
 * stays; Escape cancels).
 * Resolves true only on the confirm button.
 */
export function useConfirm(): [(text: string, action: string) => Promise<boolean>, ComponentChildren] {
  const dialog = useRef<HTMLDialogElement>(null);
  const [ask, setAsk] = useState<{ text: string; action: string; resolve: (ok: boolean) => void } | null>(null);
  useEffect(() => {
    if (ask && dialog.current && !dialog.current.open) dialog.current.showModal();
  }, [ask]);
  const close = (ok: boolean) => {
    ask?.resolve(ok);
    setAsk(null);
    dialog.current?.close();
  };
  const confirm = (text: string, action: string) => new Promise<boolean>((resolve) => setAsk({ text, action, resolve }));
  const view = (
    <dialog ref={dialog} class="confirm" aria-labelledby="confirm-title" onCancel={() => close(false)}>
      {ask && (
        <form method="dialog" onSubmit={(e) => (e.preventDefault(), close(true))}>
          <h2 id="confirm-title">Please confirm</h2>
          <p>{ask.text}</p>
          <div class="actions">
            <button type="button" class="secondary" onClick={() => close(false)}>
              Cancel
            </button>
            <button type="submit" class="danger">
              {ask.action}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
  return [confirm, view];
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** "a, b, c" typed by a person → the list; blanks dropped. */
export function list(text: string): string[] {
  return text
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A section's last outcome: what went well (a status, read out politely) and what failed (an alert). */
export function Outcome({ notice, failure, noticeClass = 'ok' }: { notice: string | null; failure?: string | null; noticeClass?: string }) {
  return (
    <>
      {notice && (
        <p class={noticeClass} role="status">
          {notice}
        </p>
      )}
      {failure && (
        <p class="error" role="alert">
          {failure}
        </p>
      )}
    </>
  );
}

/** What a row's check (a C-ECHO, a test message) answered: running, or its result. */
export type CheckResult = { busy: true } | { busy: false; text: string; ok: boolean };

/** The answer of a row's check, shown beside its buttons once it came. */
export function CheckAnswer({ result }: { result: CheckResult | undefined }) {
  if (!result || result.busy) return null;
  return (
    <p class={`echo ${result.ok ? 'ok' : 'error'}`} role="status">
      {result.text}
    </p>
  );
}

/** A table row's Edit and Delete buttons, labelled with what the row is. */
export function EditDeleteButtons({ label, onEdit, onDelete }: { label: string; onEdit: () => void; onDelete: () => void }) {
  return (
    <>
      <button type="button" class="secondary" aria-label={`Edit ${label}`} onClick={onEdit}>
        Edit
      </button>
      <button type="button" class="danger" aria-label={`Delete ${label}`} onClick={onDelete}>
        Delete
      </button>
    </>
  );
}
