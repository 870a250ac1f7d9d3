import type { RouteDeps } from '../src/http/server.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext } from '../src/http/state.js';
import { errorMessage } from '../src/errors.js';
import { negotiateRetrieve } from './accept.js';
import { multipartStream, newBoundary, type OutPart } from './multipart-writer.js';
import { resolveInstances, resourcePath, resourceUrl } from './resources.js';

/**
 * WADO-RS Retrieve (PS3.18 §10.4) of a study, series or instance as
 * `multipart/related; type="application/dicom"`: one part per instance, each the stored Part 10
 * file byte for byte, its Content-Type naming the transfer syntax it is in
 * (`application/dicom; transfer-syntax=…`) and its Content-Location the instance URL.
 *
 * Parts are streamed from storage one after the other with backpressure (multipart-writer.ts):
 * nothing is buffered per study. The first blob is opened before the status line goes out, so a
 * missing first blob is an error status; a failure later cuts the response short (no closing
 * delimiter), which clients detect as a broken transfer.
 *
 * Negotiation (accept.ts): as stored unless the client names a transfer syntax; an explicit one
 * is served only when every instance is stored in it, otherwise 406 (no transcoding yet).
 */
export function retrieveHandler(deps: RouteDeps) {
  const { db, storage, log } = deps;
  return async (ctx: AppContext): Promise<void> => {
    const p = resourcePath(ctx);
    ctx.state.audit = { studyInstanceUid: p.study, details: { level: p.level } };
    const instances = await resolveInstances(db, p);

    const stored = new Set(instances.map((i) => i.transfer_syntax_uid));
    const choice = negotiateRetrieve(ctx.get('accept') || undefined, stored);
    if (!choice.ok) {
      throw new HttpError(406, 'not_acceptable', choice.reasons[0] ?? 'no acceptable media type', { reasons: choice.reasons });
    }

    const base = `${ctx.protocol}://${ctx.host}/dicom-web`;
    const parts: OutPart[] = instances.map((i) => ({
      headers: {
        'Content-Type': `application/dicom; transfer-syntax=${i.transfer_syntax_uid}`,
        'Content-Location': resourceUrl(base, i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid),
      },
      open: () => storage.get(i.storage_key),
    }));
    const first = await storage.get(instances[0]!.storage_key);
    const boundary = newBoundary();
    const { stream, done } = multipartStream(boundary, parts, first);
    const bytes = instances.reduce((n, i) => n + i.size_bytes, 0);
    ctx.state.audit = {
      studyInstanceUid: p.study,
      details: { level: p.level, instances: instances.length, bytes, transferSyntax: choice.transferSyntax },
    };
    const requestId = ctx.state.requestId;
    const res = ctx.res;
    done.catch((err: unknown) => {
      // The client went away (not worth a log line), or a blob failed midway: the status is out,
      // so the only honest signal left is to cut the connection.
      if (!res.destroyed && !res.writableFinished) {
        log.error({ err: errorMessage(err), requestId }, 'WADO-RS retrieve failed midway');
        res.destroy();
      }
    });
    ctx.status = 200;
    ctx.body = stream;
    // Set after the body (which would default it) and verbatim (ctx.type would run a MIME lookup).
    ctx.set('Content-Type', `multipart/related; type="application/dicom"; boundary=${boundary}`);
  };
}
