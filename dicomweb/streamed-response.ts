import type { Readable } from 'node:stream';
import type { RouteDeps } from '../src/http/deps.js';
import type { AppContext } from '../src/http/state.js';
import { RadiantError, StorageError, errorMessage } from '../src/errors.js';
import { multipartStream, newBoundary, ResponseClosedError, type OutPart } from './multipart-writer.js';

/**
 * A multipart/related answer of the retrieve routes (WADO-RS instances, frames, bulk data) and
 * what happens when a part fails after the status line went out (an instance failing its SHA-256
 * check, a storage read error, a blob gone): the connection is destroyed, so the client sees a
 * broken transfer without the closing delimiter, never a multipart that looks complete; the
 * failure is logged (request id, error code and message: storage keys and UIDs, no patient data)
 * and audited as a failed retrieve, since the row the guard wrote says the request started well.
 * A client that went away is neither.
 */
export interface MultipartAnswer {
  parts: OutPart[];
  /** parts[0]'s body, opened before the status so its failure can still be an error status. */
  first?: Readable;
  /** The Content-Type, given the boundary. */
  contentType(boundary: string): string;
  /** The guard's audit action and resource type, for the failure row. */
  action: string;
  resourceType: string;
  /** Called when the last byte was handed on. */
  onDone?(): void;
}

export function respondMultipart(deps: Pick<RouteDeps, 'log' | 'audit'>, ctx: AppContext, answer: MultipartAnswer): void {
  const boundary = newBoundary();
  const { stream, done } = multipartStream(boundary, answer.parts, answer.first);
  const res = ctx.res;
  const requestId = ctx.state.requestId;
  done.then(
    () => answer.onDone?.(),
    (err: unknown) => {
      if (!res.destroyed) res.destroy();
      if (err instanceof ResponseClosedError) return;
      const code =
        err instanceof StorageError && err.kind === 'not-found'
          ? 'blob_missing'
          : err instanceof RadiantError
            ? (err.code ?? err.kind)
            : 'storage_error';
      deps.log.error({ err: errorMessage(err), code, requestId }, `${answer.action}: a part failed midway, connection cut`);
      const principal = ctx.state.principal;
      const audit = ctx.state.audit;
      void deps.audit.record({
        actorType: principal ? 'user' : 'anonymous',
        actor: principal?.username,
        peer: ctx.ip,
        action: answer.action,
        resourceType: answer.resourceType,
        resourceId: audit?.resourceId,
        patientId: audit?.patientId,
        studyInstanceUid: audit?.studyInstanceUid,
        outcome: 'failure',
        status: 500,
        details: { requestId, method: ctx.method, failedMidway: code },
      });
    },
  );
  ctx.status = 200;
  ctx.body = stream;
  // Set after the body (which would default it) and verbatim (ctx.type would run a MIME lookup).
  ctx.set('Content-Type', answer.contentType(boundary));
}

/**
 * A single streamed body (a frame, a bulk data value): an error of the stream cuts the connection
 * (the status and Content-Length are out) and is never uncaught, even when it comes before Koa
 * pipes the body (Koa 3 listens only from then on).
 */
export function cutOnError(ctx: AppContext, body: Readable): Readable {
  const res = ctx.res;
  body.once('error', () => {
    if (!res.destroyed) res.destroy();
  });
  return body;
}
