import type Koa from 'koa';
import type { AuditLog } from '../audit/audit.js';
import { can, type Permission } from '../auth/permissions.js';
import type { Principal, TokenVerifier } from '../auth/tokens.js';
import { HttpError, httpStatusOf } from './errors.js';
import { routeOf, type AppState, type BaseContext } from './state.js';

export interface Security {
  /** Authenticate (401), authorise (403), run the handler, then write the audit row. */
  guard(permission: Permission, action: string, resourceType: string): Koa.Middleware<AppState>;
  /** Authenticate only (e.g. /api/auth/me). */
  authenticated(): Koa.Middleware<AppState>;
}

const ANONYMOUS_ADMIN: Principal = { userId: 0, username: 'auth-disabled', role: 'admin' };

export function createSecurity(opts: { verifier: TokenVerifier; audit: AuditLog; disabled: boolean }): Security {
  async function authenticate(ctx: BaseContext): Promise<Principal> {
    if (opts.disabled) return ANONYMOUS_ADMIN;
    const result = await opts.verifier.verify(ctx.req);
    if (!result.ok) {
      throw new HttpError(401, 'unauthorized', `authentication required: ${result.reason}`, undefined, {
        'WWW-Authenticate': `Bearer realm="radiant", error="invalid_token"`,
      });
    }
    return result.principal;
  }

  function record(ctx: BaseContext, action: string, resourceType: string, status: number): Promise<void> {
    const p = ctx.state.principal;
    return opts.audit.record({
      actorType: p ? 'user' : 'anonymous',
      actor: p?.username,
      peer: ctx.ip,
      action,
      resourceType,
      resourceId: ctx.state.audit?.resourceId,
      patientId: ctx.state.audit?.patientId,
      studyInstanceUid: ctx.state.audit?.studyInstanceUid,
      outcome: status < 400 ? 'success' : 'failure',
      status,
      details: { requestId: ctx.state.requestId, method: ctx.method, route: routeOf(ctx), ...ctx.state.audit?.details },
    });
  }

  return {
    guard(permission, action, resourceType) {
      return async (ctx, next) => {
        let status = 500;
        try {
          ctx.state.principal = await authenticate(ctx);
          if (!can(ctx.state.principal.role, permission)) {
            throw new HttpError(403, 'forbidden', `role ${ctx.state.principal.role} may not ${permission}`);
          }
          await next();
          status = ctx.status;
        } catch (err) {
          status = httpStatusOf(err);
          throw err;
        } finally {
          await record(ctx, action, resourceType, status);
        }
      };
    },
    authenticated() {
      return async (ctx, next) => {
        ctx.state.principal = await authenticate(ctx);
        await next();
      };
    },
  };
}
