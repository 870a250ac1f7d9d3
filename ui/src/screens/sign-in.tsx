import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, signIn, type SessionEnd } from '../api/client';

const ENDED: Record<SessionEnd, string | undefined> = {
  'signed-out': 'You signed out.',
  expired: 'Your session expired. Please sign in again.',
  unauthorized: 'Your session is no longer valid. Please sign in again.',
};

/** Sign-in with the node's users; the reason a session ended is shown above the form. */
export function SignInScreen({ ended }: { ended?: SessionEnd }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const user = useRef<HTMLInputElement>(null);
  const pass = useRef<HTMLInputElement>(null);
  // The form is the whole screen: start in its first field.
  useEffect(() => user.current?.focus(), []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      await signIn(user.current?.value.trim() ?? '', pass.current?.value ?? '');
    } catch (err) {
      if (pass.current) pass.current.value = '';
      if (err instanceof ApiError && err.status === 401) setError('Invalid username or password.');
      else if (err instanceof ApiError && err.status === 429)
        setError(`Too many failed sign-ins. Try again${err.retryAfter ? ` in ${err.retryAfter} seconds` : ' later'}.`);
      else if (err instanceof ApiError && err.status === 400) setError('Enter a username and a password.');
      else setError('The node could not be reached. Try again.');
      pass.current?.focus();
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="centered">
      <form class="card sign-in" onSubmit={submit} aria-labelledby="sign-in-title" noValidate>
        <h1 id="sign-in-title">Sign in to RadiantAI</h1>
        {ended && ENDED[ended] && !error && (
          <p class={ended === 'signed-out' ? 'note' : 'note warn'} role="status">
            {ENDED[ended]}
          </p>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <label for="username">Username</label>
        <input id="username" name="username" ref={user} autoComplete="username" required />
        <label for="password">Password</label>
        <input id="password" name="password" ref={pass} type="password" autoComplete="current-password" required />
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
