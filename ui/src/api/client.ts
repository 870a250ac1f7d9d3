import { tokenExpiry } from '../lib/token';

/**
 * The UI's one way to the node's API. The bearer token lives in this module's memory only:
 * never localStorage, sessionStorage or a cookie, so closing the tab ends the session and no
 * other page or extension storage can read it. A 401, or the token's `exp` passing, ends the
 * session and the app shows sign-in with the reason.
 */

export interface Me {
  id: number;
  username: string;
  role: string;
  display_name: string;
  permissions: string[];
  auth_disabled: boolean;
}

export type SessionEnd = 'signed-out' | 'expired' | 'unauthorized';

export interface Session {
  me: Me;
  expiresAt?: Date;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
    /** A 400's field errors (`details` of the node's error body): which field, what is wrong. */
    readonly details?: Array<{ path: string; message: string }>,
  ) {
    super(message);
  }
}

type Listener = (session: Session | null, ended?: SessionEnd) => void;

let token: string | null = null;
let session: Session | null = null;
let expiryTimer: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<Listener>();

export function onSession(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

export function currentSession(): Session | null {
  return session;
}

export function can(permission: string): boolean {
  return !!session?.me.permissions.includes(permission);
}

function setSession(s: Session | null, ended?: SessionEnd): void {
  session = s;
  for (const l of listeners) l(s, ended);
}

/** Ends the session: the token is dropped from memory; `why` is what sign-in tells the user. */
export function endSession(why: SessionEnd): void {
  if (expiryTimer) clearTimeout(expiryTimer);
  expiryTimer = undefined;
  const had = session !== null;
  token = null;
  if (had || why !== 'signed-out') setSession(null, why);
}

export function authHeaders(): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function errorOf(res: Response): Promise<ApiError> {
  let code = 'error';
  let message = `${res.status} ${res.statusText}`;
  let details: Array<{ path: string; message: string }> | undefined;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string; details?: unknown } };
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
    if (Array.isArray(body.error?.details)) details = body.error.details as Array<{ path: string; message: string }>;
  } catch {
    // Not JSON: keep the status line.
  }
  const retry = Number(res.headers.get('Retry-After'));
  return new ApiError(res.status, code, message, Number.isFinite(retry) && retry > 0 ? retry : undefined, details);
}

/** A JSON call to the node; a 401 while signed in ends the session (back to sign-in). */
export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(path, {
    ...init,
    credentials: 'omit',
    cache: 'no-store',
    headers: { Accept: 'application/json', ...authHeaders(), ...(init.headers as Record<string, string> | undefined) },
  });
  if (res.status === 401 && session && !session.me.auth_disabled) {
    endSession('unauthorized');
    throw await errorOf(res);
  }
  if (!res.ok) throw await errorOf(res);
  // 204 (a delete): no body.
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** A file from the node (a CSV export), fetched with the token in the header: never in a URL. */
export async function apiBlob(path: string): Promise<{ blob: Blob; headers: Headers }> {
  const res = await fetch(path, { credentials: 'omit', cache: 'no-store', headers: authHeaders() });
  if (res.status === 401 && session && !session.me.auth_disabled) endSession('unauthorized');
  if (!res.ok) throw await errorOf(res);
  return { blob: await res.blob(), headers: res.headers };
}

/** Sign-in with the node's users (OAuth2 password grant); the session starts once /me answers. */
export async function signIn(username: string, password: string): Promise<Session> {
  const res = await fetch('/api/auth/token', {
    method: 'POST',
    credentials: 'omit',
    cache: 'no-store',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'password', username, password }).toString(),
  });
  if (!res.ok) throw await errorOf(res);
  const body = (await res.json()) as { access_token: string; expires_in?: number };
  token = body.access_token;
  const expiresAt = tokenExpiry(token) ?? (body.expires_in ? new Date(Date.now() + body.expires_in * 1000) : undefined);
  let me: Me;
  try {
    me = await api<Me>('/api/auth/me');
  } catch (err) {
    token = null;
    throw err;
  }
  if (expiresAt) {
    // setTimeout's delay is a 32-bit number of ms: a token valid longer than ~24 days is re-armed.
    const arm = () => {
      const left = expiresAt.getTime() - Date.now();
      if (left <= 0) return endSession('expired');
      expiryTimer = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
    };
    arm();
  }
  const s = { me, expiresAt };
  setSession(s);
  return s;
}

/**
 * At start: a node with AUTH_DISABLED answers /me without a token (a lab bench), and the UI
 * opens without sign-in; otherwise the answer is 401 and sign-in shows.
 */
export async function probeSession(): Promise<Session | null> {
  const res = await fetch('/api/auth/me', { credentials: 'omit', cache: 'no-store', headers: { Accept: 'application/json' } });
  if (!res.ok) return null;
  const me = (await res.json()) as Me;
  if (!me.auth_disabled) return null;
  const s = { me };
  setSession(s);
  return s;
}
