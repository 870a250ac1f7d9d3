import { createUser } from '../../src/auth/users.js';
import type { Role } from '../../src/auth/permissions.js';
import type { TestNode } from './node.js';

/** HTTP helpers for tests against a real node (startTestNode listens on a free HTTP port). */

export function baseUrl(node: TestNode): string {
  return `http://127.0.0.1:${node.httpPort}`;
}

let counter = 0;

/** Create a user with the role (directly in the index) and log in through the real endpoint. */
export async function tokenFor(node: TestNode, role: Role): Promise<string> {
  return (await loginFor(node, role)).token;
}

/** As tokenFor, with the user's name and password (signing a report asks for the password again). */
export async function loginFor(node: TestNode, role: Role): Promise<{ token: string; username: string; password: string }> {
  const username = `${role}-${process.pid}-${++counter}`;
  const password = `pw-${username}-long-enough`;
  await createUser(node.db, { username, password, role });
  const res = await fetch(`${baseUrl(node)}/api/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password }),
  });
  if (res.status !== 200) throw new Error(`login as ${role} failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { access_token: string };
  return { token: body.access_token, username, password };
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
