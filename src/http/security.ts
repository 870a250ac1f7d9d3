import type Koa from 'koa';
import type { AuditEntry, AuditLog } from '../audit/audit.js';
import { can, type Permission } from '../auth/permissions.js';
import type { Principal, TokenVerifier } from '../auth/tokens.js';
import { HttpError, httpStatusOf } from './errors.js';
import type { RequestLimits } from './request-limits.js';
import { routeOf, type AppState, type BaseContext } from './state.js';

export interface GuardOptions {
  /**
   * Write the audit row before the handler runs (outcome `started`) and complete it afterwards,
   * for long or risky requests (STOW-RS, deletes, whole-study retrieves, exports): one that
   * hangs, or dies with the process, still leaves a trace.
   */
  started?: boolean;
}

export interface Security {
  /** Authenticate (401), authorise (403), run the handler, then write the audit row. */
  guard(permission: Permission, action: string, resourceType: string, options?: GuardOptions): Koa.Middleware<AppState>;
  /** Authenticate only (e.g. /api/auth/me). */
  authenticated(): Koa.Middleware<AppState>;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const ANONYMOUS_ADMIN: Principal = { userId: 0, username: 'auth-disabled', role: 'admin' };

export function createSecurity(opts: { verifier: TokenVerifier; audit: AuditLog; disabled: boolean; limits?: RequestLimits }): Security {
  async function authenticate(ctx: BaseContext): Promise<Principal> {
    if (opts.disabled) return ANONYMOUS_ADMIN;
    const result = await opts.verifier.verify(ctx.req);
    if (!result.ok) {
      throw new HttpError(401, 'unauthorized', `authentication required: ${result.reason}`, undefined, {
        'WWW-Authenticate': `Bearer realm="radiant", error="invalid_token"`,
      });
    }
    // The per-user request limit (429), counted once the user is known; with auth disabled there is no user.
    ctx.state.principal = result.principal;
    opts.limits?.checkUser(ctx, result.principal);
    return result.principal;
  }

  const patientOf = (study: string) => opts.audit.patientOfStudy(study);

  function entry(ctx: BaseContext, action: string, resourceType: string, outcome: AuditEntry['outcome'], status?: number): AuditEntry {
    const p = ctx.state.principal;
    return {
      actorType: p ? 'user' : 'anonymous',
      actor: p?.username,
      peer: ctx.ip,
      action,
      resourceType,
      resourceId: ctx.state.audit?.resourceId,
      patientId: ctx.state.audit?.patientId,
      studyInstanceUid: ctx.state.audit?.studyInstanceUid,
      outcome,
      status,
      details: { requestId: ctx.state.requestId, method: ctx.method, route: routeOf(ctx), ...ctx.state.audit?.details },
    };
  }

  return {
    guard(permission, action, resourceType, options = {}) {
      return async (ctx, next) => {
        let status = 500;
        let started: Promise<number | undefined> | undefined;
        const pathStudy = (ctx.params as Record<string, string | undefined> | undefined)?.study;
        let pathPatient: Promise<string | undefined> | undefined;
        try {
          ctx.state.principal = await authenticate(ctx);
          // Looked up beside the handler (not before it), and before a DELETE removes the study.
          if (pathStudy !== undefined) pathPatient = patientOf(pathStudy);
          if (!can(ctx.state.principal.role, permission)) {
            throw new HttpError(403, 'forbidden', `role ${ctx.state.principal.role} may not ${permission}`);
          }
          if (options.started) {
            ctx.state.audit = { studyInstanceUid: pathStudy, ...ctx.state.audit };
            // Not awaited: the row goes in while the handler runs.
            started = opts.audit.begin(entry(ctx, action, resourceType, 'started'));
          }
          await next();
          status = ctx.status;
        } catch (err) {
          status = httpStatusOf(err);
          throw err;
        } finally {
          const audit = (ctx.state.audit ??= {});
          audit.studyInstanceUid ??= pathStudy;
          // Not for unauthenticated requests: they must not cost the index lookups.
          if (ctx.state.principal && audit.patientId === undefined && audit.studyInstanceUid !== undefined) {
            audit.patientId = await (audit.studyInstanceUid === pathStudy && pathPatient ? pathPatient : patientOf(audit.studyInstanceUid));
          }
          const final = entry(ctx, action, resourceType, status < 400 ? 'success' : 'failure', status);
          const id = started && (await started);
          // A read's row is queued, not awaited: reads must not wait for the SQLite writer that
          // ingest keeps busy (AuditLog.record says what bounds the loss); a change's row commits first.
          await (id ? opts.audit.finish(id, final) : opts.audit.record(final, SAFE_METHODS.has(ctx.method) ? 'queued' : 'commit'));
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
