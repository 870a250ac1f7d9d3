import { ZodError } from 'zod';
import type Koa from 'koa';
import { RadiantError, errorMessage, type ErrorKind } from '../errors.js';
import { VerifierUnavailableError } from '../auth/tokens.js';
import { isDatabaseUnavailable } from '../db/connection.js';
import type { Logger } from '../logger.js';
import type { AppState } from './state.js';

/** An error with the HTTP status and machine-readable code it answers with. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Seconds a client is asked to wait when the node cannot reach its database. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/** The HTTP edge's one table: the status each domain code answers with. */
const HTTP_STATUS: Record<ErrorKind, number> = {
  'invalid-input': 400,
  unparseable: 400,
  mismatch: 409,
  unsupported: 415,
  duplicate: 409,
  'too-large': 413,
  'out-of-resources': 503,
  'not-found': 404,
  config: 500,
  conflict: 409,
  forbidden: 403,
  unprocessable: 422,
  internal: 500,
};

/** The node could not do the work for reasons of its own (database down): 503, never 401/500. */
function isUnavailable(err: unknown): boolean {
  return err instanceof VerifierUnavailableError || isDatabaseUnavailable(err);
}

/** The status an error answers with: one mapping for the error envelope and the audit row. */
export function httpStatusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof ZodError) return 400;
  if (isUnavailable(err)) return 503;
  if (err instanceof RadiantError) return HTTP_STATUS[err.kind];
  return 500;
}

/**
 * Every error leaves as `{error: {code, message, details}}` with the status it maps to.
 * Server-side failures (5xx) answer with a neutral message: their text can name database
 * addresses, file paths or driver internals, which the log gets and the client does not.
 */
export function errorMiddleware(log: Logger): Koa.Middleware<AppState> {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      let status = 500;
      let code = 'internal_error';
      let message = 'internal error';
      let details: unknown;
      if (err instanceof HttpError) {
        ({ status, code, message, details } = err);
        for (const [k, v] of Object.entries(err.headers ?? {})) ctx.set(k, v);
      } else if (err instanceof ZodError) {
        status = 400;
        code = 'invalid_request';
        message = 'request validation failed';
        details = err.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
      } else if (isUnavailable(err)) {
        status = 503;
        code = 'service_unavailable';
        message = 'service temporarily unavailable';
        ctx.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
        const cause = err instanceof VerifierUnavailableError ? err.cause : err;
        log.warn({ err: errorMessage(cause), requestId: ctx.state.requestId }, 'database unavailable');
      } else if (err instanceof RadiantError) {
        status = HTTP_STATUS[err.kind];
        // A 500 is the node's own failure, whatever its kind: one code for all of them.
        code = err.code ?? (status === 500 ? 'internal_error' : err.kind.replace(/-/g, '_'));
        if (status < 500) {
          message = err.message;
          details = err.details;
        } else {
          message = status === 503 ? 'service temporarily unavailable' : 'internal error';
          log.error({ err: err.message, requestId: ctx.state.requestId }, 'server-side failure');
        }
      } else {
        log.error({ err: err instanceof Error ? err.message : String(err), requestId: ctx.state.requestId }, 'unhandled error');
      }
      ctx.status = status;
      ctx.body = { error: { code, message, ...(details === undefined ? {} : { details }) } };
    }
  };
}
