import Router from '@koa/router';
import { z } from 'zod';
import type { Db } from '../../db/connection.js';
import type { AuditLog } from '../../audit/audit.js';
import { can, ROLE_PERMISSIONS, ROLES } from '../../auth/permissions.js';
import { DUMMY_HASH, verifyPassword } from '../../auth/passwords.js';
import type { FailureLimiter } from '../../auth/rate-limit.js';
import { issueToken, type TokenVerifier } from '../../auth/tokens.js';
import type { FirstAdminBootstrap } from '../../auth/bootstrap.js';
import {
  countUsers,
  createFirstUser,
  createUser,
  findUserById,
  findUserWithHash,
  touchLogin,
  userDisplayName,
  type User,
} from '../../auth/users.js';
import { readForm, readJson } from '../body.js';
import { RadiantError } from '../../errors.js';
import { HttpError, httpStatusOf } from '../errors.js';
import type { Security } from '../security.js';
import type { AppContext, AppRouter, AppState } from '../state.js';
import { documentRoutes, E, errorResponse, json, ok, ref } from '../api-doc.js';

const registerBody = z.object({
  username: z
    .string()
    .trim()
    .min(3)
    .max(64)
    .regex(/^[A-Za-z0-9._@-]+$/, 'letters, digits and . _ @ - only'),
  password: z.string().min(10).max(256),
  role: z.enum(ROLES),
  full_name: z.string().max(128).optional(),
  /** Professional credentials shown after the name where the user signs, e.g. "MD". */
  credentials: z.string().trim().min(1).max(64).optional(),
  /** The first admin only, where AUTH_BOOTSTRAP=token (also accepted as header X-Bootstrap-Token). */
  bootstrap_token: z.string().max(256).optional(),
});

const tokenBody = z.object({
  grant_type: z.literal('password').optional(),
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(256),
});

/** An address gets this many users' worth of failures before it is locked out as a whole. */
const IP_FACTOR = 4;

export interface AuthRouteDeps {
  db: Db;
  audit: AuditLog;
  security: Security;
  verifier: TokenVerifier;
  limiter: FailureLimiter;
  secretKey: string;
  tokenExpirySeconds: number;
  authDisabled: boolean;
  bootstrap: FirstAdminBootstrap;
}

export function authRoutes(deps: AuthRouteDeps): AppRouter {
  const r = new Router<AppState>({ prefix: '/api/auth' });

  r.post('/register', async (ctx) => {
    let requested: string | undefined;
    try {
      const body = await readJson(ctx, registerBody);
      requested = body.username;
      const user = await register(ctx, body);
      ctx.status = 201;
      ctx.body = { id: user.id, username: user.username, role: user.role, full_name: user.fullName, credentials: user.credentials };
    } catch (err) {
      // A refused registration is an attempt on the user table: who, from where, why.
      const p = ctx.state.principal;
      await deps.audit.record({
        actorType: p ? 'user' : 'anonymous',
        actor: p?.username ?? requested,
        peer: ctx.ip,
        action: 'user.register',
        resourceType: 'user',
        outcome: 'failure',
        status: httpStatusOf(err),
        details: { requested, reason: (err instanceof HttpError || err instanceof RadiantError ? err.code : undefined) ?? 'error' },
      });
      throw err;
    }
  });

  async function register(ctx: AppContext, body: z.infer<typeof registerBody>): Promise<User> {
    const newUser = {
      username: body.username,
      password: body.password,
      role: body.role,
      fullName: body.full_name,
      credentials: body.credentials,
    };
    // The first user of an empty node bootstraps as admin; after that only admins register.
    if ((await countUsers(deps.db)) === 0) {
      const refusal = deps.bootstrap.refusal(ctx.get('x-bootstrap-token') || body.bootstrap_token);
      if (refusal) throw new HttpError(403, 'forbidden', refusal);
      if (body.role !== 'admin') throw new HttpError(403, 'forbidden', 'the first user must be an admin');
      // A lost race is BootstrapClosedError: 409 'conflict' by the HTTP table.
      const user = await createFirstUser(deps.db, newUser);
      await recordCreated(ctx, user, 'user.bootstrap');
      return user;
    }
    const outcome = deps.authDisabled ? undefined : await deps.verifier.verify(ctx.req);
    if (outcome && !outcome.ok) throw new HttpError(401, 'unauthorized', `authentication required: ${outcome.reason}`);
    const role = outcome?.ok ? outcome.principal.role : 'admin';
    ctx.state.principal = outcome?.ok ? outcome.principal : undefined;
    if (!can(role, 'users:manage')) throw new HttpError(403, 'forbidden', `role ${role} may not users:manage`);
    // A taken username is UserExistsError: 409 'conflict' by the HTTP table.
    const user = await createUser(deps.db, newUser);
    await recordCreated(ctx, user, 'user.create');
    return user;
  }

  function recordCreated(ctx: AppContext, user: User, action: string): Promise<void> {
    return deps.audit.record({
      actorType: ctx.state.principal ? 'user' : 'anonymous',
      actor: ctx.state.principal?.username ?? user.username,
      peer: ctx.ip,
      action,
      resourceType: 'user',
      resourceId: String(user.id),
      outcome: 'success',
      status: 201,
    });
  }

  r.post('/token', async (ctx: AppContext) => {
    const body = await readForm(ctx, tokenBody);
    // Per (user, address): knowing a username is not enough to lock its owner out from elsewhere.
    // Per address, with a larger allowance (a department behind NAT): against spraying usernames.
    const userKey = `user:${body.username.toLowerCase()}|ip:${ctx.ip}`;
    const ipKey = `ip:${ctx.ip}`;
    const wait = Math.max(deps.limiter.retryAfter(userKey), deps.limiter.retryAfter(ipKey));
    if (wait > 0) {
      await deps.audit.record({
        actorType: 'anonymous',
        actor: body.username,
        peer: ctx.ip,
        action: 'auth.login',
        outcome: 'failure',
        status: 429,
        details: { reason: 'rate limited' },
      });
      throw new HttpError(429, 'too_many_attempts', 'too many failed logins; try again later', undefined, { 'Retry-After': String(wait) });
    }
    const user = await findUserWithHash(deps.db, body.username);
    // Hash even for unknown users so the response time does not say which usernames exist.
    const ok = (await verifyPassword(body.password, user?.passwordHash ?? DUMMY_HASH)) && !!user?.active;
    if (!ok || !user) {
      const lockouts = { 'user+address': deps.limiter.fail(userKey), address: deps.limiter.fail(ipKey, IP_FACTOR) };
      await deps.audit.record({
        actorType: 'anonymous',
        actor: body.username,
        peer: ctx.ip,
        action: 'auth.login',
        outcome: 'failure',
        status: 401,
      });
      for (const [scope, seconds] of Object.entries(lockouts)) {
        if (seconds > 0) {
          await deps.audit.record({
            actorType: 'anonymous',
            actor: body.username,
            peer: ctx.ip,
            action: 'auth.lockout',
            outcome: 'failure',
            status: 429,
            details: { scope, seconds },
          });
        }
      }
      throw new HttpError(401, 'invalid_grant', 'invalid username or password');
    }
    deps.limiter.reset(userKey);
    await touchLogin(deps.db, user.id);
    await deps.audit.record({
      actorType: 'user',
      actor: user.username,
      peer: ctx.ip,
      action: 'auth.login',
      outcome: 'success',
      status: 200,
    });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      access_token: issueToken(deps.secretKey, { userId: user.id, username: user.username, role: user.role }, deps.tokenExpirySeconds),
      token_type: 'bearer',
      expires_in: deps.tokenExpirySeconds,
    };
  });

  r.get('/me', deps.security.authenticated(), async (ctx) => {
    const p = ctx.state.principal!;
    const u = await findUserById(deps.db, p.userId);
    ctx.body = {
      id: p.userId,
      username: p.username,
      role: p.role,
      full_name: u?.fullName ?? null,
      credentials: u?.credentials ?? null,
      // How the user's signature reads on reports ("Jane Doe, MD").
      display_name: userDisplayName(u ?? { username: p.username, fullName: null, credentials: null }),
      // What the web UI shows: only what the role may do (src/auth/permissions.ts decides).
      permissions: ROLE_PERMISSIONS[p.role],
      auth_disabled: deps.authDisabled,
    };
  });

  return r;
}

documentRoutes(
  {
    method: 'post',
    path: '/api/auth/register',
    tags: ['auth'],
    summary: 'Create a user (the first user of an empty node bootstraps as admin; then admins only)',
    request: {
      headers: z.object({
        'x-bootstrap-token': z.string().max(256).optional().describe('The first admin only, where AUTH_BOOTSTRAP=token'),
      }),
      body: { required: true, content: json(registerBody) },
    },
    security: [{}, { bearerAuth: [] }],
    responses: { 201: { description: 'Created' }, 400: E[400], 401: E[401], 403: E[403], 409: E[409] },
  },
  {
    method: 'post',
    path: '/api/auth/token',
    tags: ['auth'],
    summary: 'Log in (OAuth2 password grant): a bearer token',
    request: {
      body: {
        required: true,
        content: { 'application/x-www-form-urlencoded': { schema: tokenBody }, 'application/json': { schema: tokenBody } },
      },
    },
    security: [],
    responses: { 200: ok('Token', ref('Token')), 400: E[400], 401: E[401], 429: errorResponse('Too many failed logins (Retry-After)') },
  },
  {
    method: 'get',
    path: '/api/auth/me',
    tags: ['auth'],
    summary: 'Who the token belongs to',
    security: [{ bearerAuth: [] }],
    responses: {
      200: ok('The user', {
        type: 'object',
        properties: {
          id: { type: 'integer' },
          username: { type: 'string' },
          role: { type: 'string' },
          full_name: { type: 'string', nullable: true },
          credentials: { type: 'string', nullable: true },
          display_name: { type: 'string', description: 'As signatures show it, e.g. "Jane Doe, MD"' },
          permissions: { type: 'array', items: { type: 'string' }, description: "The role's permissions (src/auth/permissions.ts)" },
          auth_disabled: { type: 'boolean', description: 'AUTH_DISABLED: every request acts as an admin, no sign-in' },
        },
      }),
      401: E[401],
    },
  },
);
