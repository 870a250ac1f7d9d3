import { ZodError } from 'zod';
import type Koa from 'koa';
import { RadiantError } from '../errors.js';
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

/** Every error leaves as `{error: {code, message, details}}` with the status it maps to. */
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
      } else if (err instanceof RadiantError) {
        status = err.httpStatus;
        code = err.kind.replace(/-/g, '_');
        message = err.message;
      } else {
        log.error({ err: err instanceof Error ? err.message : String(err), requestId: ctx.state.requestId }, 'unhandled error');
      }
      ctx.status = status;
      ctx.body = { error: { code, message, ...(details === undefined ? {} : { details }) } };
    }
  };
}
