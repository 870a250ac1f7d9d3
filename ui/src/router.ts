import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes with ids only: #/worklist, #/studies/123, #/admin/users. No patient name, ID or
 * filter text ever goes into the URL (history, logs, referrers): filters live in screen state.
 */
export type Route =
  | { name: 'worklist' }
  | { name: 'study'; id: number }
  | { name: 'admin'; section: string | null }
  | { name: 'not-found' };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  if (path === '/' || path === '/worklist') return { name: 'worklist' };
  const study = /^\/studies\/([1-9][0-9]{0,9})$/.exec(path);
  if (study) return { name: 'study', id: Number(study[1]) };
  const admin = /^\/admin(?:\/([a-z-]{1,32}))?$/.exec(path);
  if (admin) return { name: 'admin', section: admin[1] ?? null };
  return { name: 'not-found' };
}

export function href(route: Route): string {
  switch (route.name) {
    case 'study':
      return `#/studies/${route.id}`;
    case 'admin':
      return route.section ? `#/admin/${route.section}` : '#/admin';
    default:
      return '#/worklist';
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}
