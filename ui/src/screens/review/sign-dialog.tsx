import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../../api/client';

/**
 * Signing, confirmed with the radiologist's password: a modal dialog (the native <dialog>, so the
 * page behind is inert), Tab kept inside it, Escape closes it. Under AUTH_DISABLED no password is
 * asked (the node signs without one and logs it).
 */
export function SignDialog({
  open,
  needsPassword,
  onSign,
  onClose,
}: {
  open: boolean;
  needsPassword: boolean;
  onSign: (password: string | undefined) => Promise<void>;
  onClose: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const pass = useRef<HTMLInputElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      setError(null);
      d.showModal();
      (pass.current ?? d.querySelector<HTMLElement>('button'))?.focus();
    } else if (!open && d.open) d.close();
  }, [open]);

  const keep = (e: KeyboardEvent) => {
    if (e.key !== 'Tab') return;
    const items = [...(ref.current?.querySelectorAll<HTMLElement>('input, button:not([disabled])') ?? [])];
    if (!items.length) return;
    const [first, last] = [items[0], items[items.length - 1]];
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last?.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first?.focus();
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    const password = needsPassword ? (pass.current?.value ?? '') : undefined;
    if (needsPassword && !password) {
      setError('Enter your password to sign.');
      pass.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onSign(password);
    } catch (err) {
      if (pass.current) pass.current.value = '';
      setError(signError(err));
      pass.current?.focus();
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} class="card sign-dialog" aria-labelledby="sign-title" aria-describedby="sign-what" onKeyDown={keep} onClose={onClose}>
      <form method="dialog" onSubmit={submit} noValidate>
        <h2 id="sign-title">Sign the report</h2>
        <p id="sign-what">
          Signing makes this report final: the node publishes it as a VERIFIED structured report and a final PDF. Findings you have not
          rejected are accepted as they are.
        </p>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {needsPassword ? (
          <>
            <label for="sign-password">Your password</label>
            <input id="sign-password" ref={pass} type="password" autoComplete="current-password" required />
          </>
        ) : (
          <p class="note warn">Sign-in is disabled on this node: no password is asked (the node logs it).</p>
        )}
        <div class="actions">
          <button type="submit" disabled={busy}>
            {busy ? 'Signing…' : 'Sign and publish'}
          </button>
          <button type="button" class="secondary" onClick={onClose} disabled={busy}>
            Cancel
          </button>
        </div>
      </form>
    </dialog>
  );
}

function signError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 403 && err.code === 'reauthentication_failed') return 'Wrong password: the report was not signed.';
    if (err.status === 403) return 'Your role may not sign reports.';
    if (err.status === 429) return `Too many wrong passwords. Try again${err.retryAfter ? ` in ${err.retryAfter} seconds` : ' later'}.`;
    if (err.status === 409) return 'The report changed meanwhile: close this, check the new version, then sign.';
    return `The report was not signed: ${err.message}`;
  }
  return 'The node could not be reached: the report was not signed.';
}
