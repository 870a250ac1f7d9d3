import { useEffect, useRef, useState } from 'preact/hooks';
import { can, currentSession, endSession, onSession, probeSession, type Session, type SessionEnd } from './api/client';
import { href, useRoute, type Route } from './router';
import { AdminScreen, mayAdminister } from './screens/admin';
import { SignInScreen } from './screens/sign-in';
import { StudyReviewScreen } from './screens/study-review';
import { WorklistScreen } from './screens/worklist';

/**
 * The shell: sign-in until there is a session, then the navigation (only what the role may do)
 * and the screen of the route. Each screen is its own module under screens/.
 */
export function App() {
  const [session, setSession] = useState<Session | null>(currentSession());
  const [ended, setEnded] = useState<SessionEnd | undefined>();
  const [probing, setProbing] = useState(true);
  const route = useRoute();

  useEffect(() => {
    const off = onSession((s, why) => {
      setSession(s);
      if (why) setEnded(why);
    });
    probeSession()
      .catch(() => null)
      .finally(() => setProbing(false));
    return off;
  }, []);

  if (probing) {
    return (
      <main class="centered" aria-busy="true">
        <p role="status">Loading…</p>
      </main>
    );
  }
  if (!session) return <SignInScreen ended={ended} />;
  return <Shell session={session} route={route} />;
}

function Shell({ session, route }: { session: Session; route: Route }) {
  const main = useRef<HTMLElement>(null);
  // A new screen: focus its main region, so keyboard and screen-reader users start there.
  useEffect(() => {
    main.current?.focus();
  }, [route.name]);
  const me = session.me;
  const current = (name: Route['name']) => (route.name === name ? { 'aria-current': 'page' as const } : {});
  return (
    <>
      <button type="button" class="skip" onClick={() => main.current?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <span class="brand">RadiantAI</span>
        <nav aria-label="Main">
          <ul>
            {can('images:read') && (
              <li>
                <a href={href({ name: 'worklist' })} {...current('worklist')}>
                  Worklist
                </a>
              </li>
            )}
            {mayAdminister() && (
              <li>
                <a href={href({ name: 'admin', section: null })} {...current('admin')}>
                  Administration
                </a>
              </li>
            )}
            <li>
              <a href="/viewer/" target="_blank" rel="noopener noreferrer">
                Viewer
              </a>
            </li>
          </ul>
        </nav>
        <div class="who">
          {me.auth_disabled ? (
            <span class="badge warn" title="AUTH_DISABLED: every request acts as an administrator">
              Sign-in disabled (lab bench)
            </span>
          ) : (
            <>
              <span>
                {me.display_name} <span class="role">({me.role})</span>
              </span>
              <button type="button" class="secondary" onClick={() => endSession('signed-out')}>
                Sign out
              </button>
            </>
          )}
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {route.name === 'worklist' && <WorklistScreen />}
        {route.name === 'study' && <StudyReviewScreen id={route.id} />}
        {route.name === 'admin' && <AdminScreen section={route.section} />}
        {route.name === 'not-found' && (
          <section>
            <h1>Not found</h1>
            <p>
              There is no such page. <a href={href({ name: 'worklist' })}>Back to the worklist</a>
            </p>
          </section>
        )}
      </main>
    </>
  );
}
