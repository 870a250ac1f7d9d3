import type { RouterInstance } from '@koa/router';
import { z } from 'zod';
import { ROLES } from '../../auth/permissions.js';
import { createUser, listUsers, updateUser, userDisplayName, type User, type UserSummary } from '../../auth/users.js';
import { parsePk } from '../../records/schemas.js';
import { readJson } from '../body.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, idParams, json, ok, secured } from '../api-doc.js';

const password = z.string().min(10).max(256);
const fullName = z.string().trim().max(128);
const credentials = z.string().trim().max(64);

const createBody = z
  .object({
    username: z
      .string()
      .trim()
      .min(3)
      .max(64)
      .regex(/^[A-Za-z0-9._@-]+$/, 'letters, digits and . _ @ - only'),
    password,
    role: z.enum(ROLES),
    full_name: fullName.min(1).optional(),
    credentials: credentials.min(1).optional(),
  })
  .strict();

const updateBody = z
  .object({
    role: z.enum(ROLES).optional(),
    full_name: fullName.nullable().optional(),
    credentials: credentials.nullable().optional(),
    active: z.boolean().optional().describe('false disables the user: no login, existing tokens refused'),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'nothing to change');

const passwordBody = z.object({ password }).strict();

function userView(u: User | UserSummary) {
  return {
    id: u.id,
    username: u.username,
    role: u.role,
    full_name: u.fullName,
    credentials: u.credentials,
    display_name: userDisplayName(u),
    active: u.active,
    ...('createdAt' in u ? { created_at: u.createdAt, last_login_at: u.lastLoginAt } : {}),
  };
}

const blankToNull = (v: string | null | undefined) => (v === undefined ? undefined : v?.trim() ? v.trim() : null);

/**
 * /api/users: the administration of users and roles (users:manage). Creating, changing (role,
 * name, credentials, disabling) and password resets are audited with what changed, never the
 * password; the last active admin cannot be demoted or disabled (409 last_admin).
 */
export function registerUserRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const { db, security } = deps;
  const guard = (action: string) => security.guard('users:manage', action, 'user');
  const found = async (ctx: AppContext, id: number, changed: boolean) => {
    if (!changed) throw new HttpError(404, 'not_found', 'user not found');
    const u = (await listUsers(db)).find((x) => x.id === id);
    if (!u) throw new HttpError(404, 'not_found', 'user not found');
    ctx.body = userView(u);
  };

  r.get('/api/users', guard('user.list'), async (ctx: AppContext) => {
    ctx.body = { items: (await listUsers(db)).map(userView) };
  });

  r.post('/api/users', guard('user.create'), async (ctx: AppContext) => {
    const body = await readJson(ctx, createBody);
    // A taken username is UserExistsError: 409.
    const user = await createUser(db, {
      username: body.username,
      password: body.password,
      role: body.role,
      fullName: body.full_name,
      credentials: body.credentials,
    });
    ctx.state.audit = { resourceId: String(user.id), details: { username: user.username, role: user.role } };
    ctx.status = 201;
    ctx.set('Location', `${ctx.state.basePath}/api/users/${user.id}`);
    ctx.body = userView(user);
  });

  r.patch('/api/users/:id', guard('user.update'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'user');
    ctx.state.audit = { resourceId: String(id) };
    const body = await readJson(ctx, updateBody);
    ctx.state.audit.details = {
      fields: Object.keys(body),
      ...(body.role ? { role: body.role } : {}),
      ...(body.active !== undefined ? { active: body.active } : {}),
    };
    const changed = await updateUser(db, id, {
      role: body.role,
      fullName: blankToNull(body.full_name),
      credentials: blankToNull(body.credentials),
      active: body.active,
    });
    await found(ctx, id, changed);
  });

  r.post('/api/users/:id/password', guard('user.password_reset'), async (ctx: AppContext) => {
    const id = parsePk(ctx.params.id, 'user');
    ctx.state.audit = { resourceId: String(id) };
    const body = await readJson(ctx, passwordBody);
    await found(ctx, id, await updateUser(db, id, { password: body.password }));
  });
}

const errors = { 400: E[400], ...GUARDED };
const user = { type: 'object' } as const;
const params = idParams('user');
documentRoutes(
  secured('users:manage', {
    method: 'get',
    path: '/api/users',
    tags: ['users'],
    summary: 'The users: role, name, credentials, display name, active, created and last login',
    responses: { 200: ok('{items}', user), ...GUARDED },
  }),
  secured('users:manage', {
    method: 'post',
    path: '/api/users',
    tags: ['users'],
    summary: 'Create a user',
    request: { body: { required: true, content: json(createBody) } },
    responses: { 201: ok('The user', user), ...errors, 409: E[409] },
  }),
  secured('users:manage', {
    method: 'patch',
    path: '/api/users/{id}',
    tags: ['users'],
    summary: 'Change role, full name, credentials, or disable (active: false); the last active admin stays (409 last_admin)',
    request: { params, body: { required: true, content: json(updateBody) } },
    responses: { 200: ok('The user', user), ...errors, 404: E[404], 409: E[409] },
  }),
  secured('users:manage', {
    method: 'post',
    path: '/api/users/{id}/password',
    tags: ['users'],
    summary: "Reset a user's password (at least 10 characters)",
    request: { params, body: { required: true, content: json(passwordBody) } },
    responses: { 200: ok('The user', user), ...errors, 404: E[404] },
  }),
);
