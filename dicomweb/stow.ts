import type { RouteDeps } from '../src/http/deps.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext } from '../src/http/state.js';
import { errorMessage } from '../src/errors.js';
import { isValidUid } from '../src/dicom/uids.js';
import { MultipartError, MultipartRelatedReader, isValidBoundary, parseMediaType, type MediaType } from './multipart.js';
import { WarningReason, failureReasonOf, metaUids, storeResponse, type FailedRef, type StoredRef } from './stow-response.js';

/**
 * STOW-RS, the Studies Store Transaction (PS3.18 §10.5): POST /studies[/{study}] with a
 * multipart/related body of application/dicom parts. Each part streams through the one ingest
 * path (Ingestor.ingestStream) before the next is read, so the request is never in memory and
 * a slow store slows the client down (backpressure) instead of filling buffers.
 *
 * Status (Table 10.5.3-1): 200 all stored; 202 some stored, with failures or warnings; 409 none
 * stored (every part failed); 400 unparseable multipart; 413 over MAX_UPLOAD_BYTES; 415 not
 * multipart/related of application/dicom; 406 when the client accepts neither
 * application/dicom+json nor application/json.
 *
 * A body that breaks off (truncated, no closing boundary) or goes over MAX_UPLOAD_BYTES midway
 * is answered 400 / 413 with the usual error envelope; instances received in full before that
 * point were acknowledged by the ingest path and STAY stored (nothing is rolled back: the same
 * as a C-STORE association aborted after some instances). The error's details carry the Store
 * Instances Response data set of what was stored, so a client can tell what to resend.
 */

const DICOM = 'application/dicom';
/** Leading bytes kept per part to name a failed instance from its File Meta group. */
const HEAD_BYTES = 8 * 1024;
/** What is read after the closing boundary before answering (an epilogue is normally a CRLF). */
const MAX_EPILOGUE = 64 * 1024;

export function stowHandler(deps: RouteDeps) {
  const { ingestor, log } = deps;
  const maxUpload = deps.config.http.maxUploadBytes;

  return async (ctx: AppContext): Promise<void> => {
    const requestStudy = ctx.params.study;
    if (requestStudy !== undefined) {
      if (!isValidUid(requestStudy)) throw new HttpError(400, 'invalid_uid', 'the Study Instance UID in the path is not a valid UID');
      ctx.state.audit = { studyInstanceUid: requestStudy };
    }

    const responseType = ctx.accepts('application/dicom+json', 'application/json');
    if (!responseType) {
      throw new HttpError(406, 'not_acceptable', 'STOW-RS answers with application/dicom+json (or application/json)');
    }

    const mediaType = parseMediaType(ctx.get('content-type'));
    if (!mediaType || mediaType.type !== 'multipart/related') {
      throw new HttpError(415, 'unsupported_media_type', `expected multipart/related; type="${DICOM}"`);
    }
    const rootType = mediaType.params.type?.toLowerCase();
    if (rootType !== undefined && rootType !== DICOM) {
      throw new HttpError(415, 'unsupported_media_type', `only ${DICOM} parts are supported (no bulk metadata upload), not ${rootType}`);
    }
    const boundary = mediaType.params.boundary;
    if (!boundary || !isValidBoundary(boundary)) {
      throw new HttpError(400, 'invalid_multipart', 'multipart/related needs a valid boundary parameter');
    }
    const declared = ctx.get('content-length');
    if (declared && Number(declared) > maxUpload) {
      ctx.set('Connection', 'close');
      throw new HttpError(413, 'payload_too_large', `request body larger than ${maxUpload} bytes (MAX_UPLOAD_BYTES)`);
    }

    const reader = new MultipartRelatedReader(ctx.req, { boundary, maxBytes: maxUpload, keepHeadBytes: HEAD_BYTES });
    const stored: StoredRef[] = [];
    const failed: FailedRef[] = [];
    // The address the client used (or the proxy's external one: src/http/external-url.ts).
    const base = ctx.state.baseUrl;
    const expected = requestStudy ? { studyInstanceUid: requestStudy } : undefined;

    const summarise = () => {
      const studies = [...new Set(stored.map((s) => s.studyInstanceUid))];
      ctx.state.audit = {
        studyInstanceUid: requestStudy ?? (studies.length === 1 ? studies[0] : undefined),
        details: {
          stored: stored.length,
          failed: failed.length,
          ...(studies.length > 1 ? { studies } : {}),
          ...(failed.length
            ? { failures: failed.slice(0, 20).map((f) => ({ reason: f.failureReason, sop: f.sopInstanceUid, message: f.message })) }
            : {}),
        },
      };
    };
    /** A request that cannot go on: what was stored stays stored, and the answer says so. */
    const abort = (status: number, code: string, message: string): never => {
      summarise();
      if (!reader.sourceEnded) ctx.set('Connection', 'close');
      const details =
        stored.length || failed.length
          ? { stored: stored.length, failed: failed.length, response: storeResponse({ base, requestStudy, stored, failed }) }
          : undefined;
      throw new HttpError(status, code, message, details);
    };
    const fromMultipart = (err: MultipartError): never =>
      err.reason === 'too-large'
        ? abort(413, 'payload_too_large', `request body larger than ${maxUpload} bytes (MAX_UPLOAD_BYTES)`)
        : abort(400, 'invalid_multipart', err.message);

    for (;;) {
      let part;
      try {
        part = await reader.next();
      } catch (err) {
        if (err instanceof MultipartError) fromMultipart(err);
        throw err;
      }
      if (!part) break;
      if (!isDicomPart(part.contentType, part.headers['content-type'])) {
        part.body.destroy();
        abort(
          415,
          'unsupported_media_type',
          `part of type ${part.contentType?.type ?? part.headers['content-type']}: only ${DICOM} parts are supported`,
        );
      }
      try {
        const r = await ingestor.ingestStream(part.body, { source: 'stow', expected });
        stored.push({
          sopClassUid: r.sopClassUid,
          sopInstanceUid: r.sopInstanceUid,
          studyInstanceUid: r.studyInstanceUid,
          seriesInstanceUid: r.seriesInstanceUid,
          warningReason:
            r.outcome === 'ignored'
              ? WarningReason.AlreadyStored
              : r.warnings.length
                ? WarningReason.DataSetDoesNotMatchSopClass
                : undefined,
        });
      } catch (err) {
        // The request itself broke (truncated, too large): that is no verdict on the instance.
        if (reader.failure) fromMultipart(reader.failure);
        const failureReason = failureReasonOf(err);
        if (failureReason === 0x0110)
          log.error({ err: errorMessage(err), requestId: ctx.state.requestId }, 'STOW-RS part failed unexpectedly');
        failed.push({ ...metaUids(part.body.head()), failureReason, message: errorMessage(err) });
      }
    }
    await reader.drainEpilogue(MAX_EPILOGUE).catch((err: unknown) => {
      if (err instanceof MultipartError && err.reason === 'too-large') fromMultipart(err);
      // A broken epilogue after the closing boundary changes nothing about what was stored.
    });
    if (!reader.sourceEnded) ctx.set('Connection', 'close'); // more epilogue than we care to read

    summarise();
    if (!stored.length && !failed.length) abort(400, 'invalid_multipart', 'the multipart body has no parts');
    ctx.status = stored.length === 0 ? 409 : failed.length || stored.some((s) => s.warningReason !== undefined) ? 202 : 200;
    ctx.type = responseType;
    ctx.body = JSON.stringify(storeResponse({ base, requestStudy, stored, failed }));
  };
}

/** A part is DICOM if it says so, or says nothing (the root type then applies). */
function isDicomPart(type: MediaType | undefined, raw: string | undefined): boolean {
  if (raw === undefined) return true;
  return type?.type === DICOM;
}
