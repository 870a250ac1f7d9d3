/**
 * When a bearer token expires: the `exp` claim of its JWT payload (seconds), read without
 * verifying (the node verifies; the UI only needs to know when to stop using it). Pure, no DOM.
 */
export function tokenExpiry(token: string): Date | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const b64 = part
      .replace(/-/g, '+')
      .replace(/_/g, '/')
      .padEnd(Math.ceil(part.length / 4) * 4, '=');
    const json = JSON.parse(globalThis.atob(b64)) as { exp?: unknown };
    return typeof json.exp === 'number' && Number.isFinite(json.exp) ? new Date(json.exp * 1000) : undefined;
  } catch {
    return undefined;
  }
}
