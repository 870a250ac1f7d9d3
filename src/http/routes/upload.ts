import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RouterInstance } from '@koa/router';
import busboy from 'busboy';
import { uploadPatientId } from '../../records/schemas.js';
import { locateInstances } from '../../records/studies.js';
import { errorMessage, RadiantError } from '../../errors.js';
import { HttpError } from '../errors.js';
import type { RouteDeps } from '../deps.js';
import type { AppContext, AppState } from '../state.js';
import { documentRoutes, E, GUARDED, ok, ref, secured } from '../api-doc.js';
import { z } from 'zod';

/**
 * POST /api/studies/upload: multipart/form-data with `patient_id` and one or more `files`.
 *
 * Each file part is streamed through the one ingest path (Ingestor.ingestStream: temp file,
 * parse, store, index), one after the other; the body is never held in memory. A file that is
 * not acceptable DICOM is reported by name and the others are stored.
 *
 * `patient_id` is a check, not an instruction: the node never rewrites DICOM, so a file whose
 * PatientID (0010,0020) differs is stored as received and reported with a warning.
 */

const FILE_FIELDS = new Set(['files', 'file']);
const MAX_FILES = 10_000;
/** File parts parsed ahead of the one being ingested; beyond this the request is not read. */
const MAX_QUEUED = 4;

export interface UploadFileReport {
  name: string;
  status: 'stored' | 'ignored' | 'failed';
  sop_instance_uid?: string;
  study_instance_uid?: string;
  series_instance_uid?: string;
  error?: string;
  warnings?: string[];
}

export interface UploadReport {
  study_id: number | null;
  study_instance_uid: string | null;
  patient_id: string | null;
  series_count: number;
  total_images: number;
  status: 'stored' | 'partial' | 'failed';
  files: UploadFileReport[];
  /** Only when the files belong to more than one study. */
  studies?: Array<{ study_id: number; study_instance_uid: string }>;
  warnings?: string[];
}

const tooLarge = (limit: number) =>
  new HttpError(413, 'payload_too_large', `upload larger than ${limit} bytes`, undefined, { Connection: 'close' });

function clipName(name: string | undefined, index: number): string {
  const n = (name ?? '').replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 255);
  return n || `file-${index + 1}`;
}

export function registerUploadRoutes(r: RouterInstance<AppState>, deps: RouteDeps): void {
  const canUpload = deps.security.guard('images:write', 'study.upload', 'study', { started: true });
  r.post('/api/studies/upload', canUpload, async (ctx: AppContext) => {
    const files: UploadFileReport[] = [];
    let report: UploadReport | undefined;
    try {
      report = await receiveUpload(ctx, deps, files);
    } finally {
      // Also when the upload failed half-way: the audit row says what was stored before.
      const stored = files.filter((f) => f.status !== 'failed').length;
      ctx.state.audit = {
        patientId: report?.patient_id ?? undefined,
        studyInstanceUid: report?.study_instance_uid ?? files.find((f) => f.study_instance_uid)?.study_instance_uid,
        resourceId: report?.study_id == null ? undefined : String(report.study_id),
        details: {
          files: files.length,
          stored,
          failed: files.length - stored,
          studies: new Set(files.flatMap((f) => (f.status !== 'failed' && f.study_instance_uid ? [f.study_instance_uid] : []))).size,
        },
      };
    }
    if (report.status === 'failed') {
      ctx.status = 422;
      ctx.body = { error: { code: 'upload_failed', message: 'no file was stored' }, ...report };
    } else {
      ctx.status = 201;
      ctx.body = report;
    }
  });
}

/** Reads the form, ingesting file by file; `files` (the caller's) fills in as it goes. */
async function receiveUpload(ctx: AppContext, deps: RouteDeps, files: UploadFileReport[]): Promise<UploadReport> {
  if (!ctx.is('multipart/form-data')) throw new HttpError(415, 'unsupported_media_type', 'expected multipart/form-data');
  const limit = deps.config.http.maxUploadBytes;
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw tooLarge(limit);

  let bb: busboy.Busboy;
  try {
    bb = busboy({
      headers: ctx.req.headers,
      defParamCharset: 'utf8',
      limits: { fields: 20, fieldSize: 1024, files: MAX_FILES, parts: MAX_FILES + 20 },
    });
  } catch (err) {
    throw new HttpError(400, 'invalid_multipart', errorMessage(err));
  }

  const warnings: string[] = [];
  let patientIdField: string | undefined;
  let failure: HttpError | undefined;
  let chain: Promise<void> = Promise.resolve();
  let queued = 0;
  let resumeBody: (() => void) | undefined;

  const ingestOne = async (stream: Readable, entry: UploadFileReport): Promise<void> => {
    // Never destroy busboy's own stream (it would stall the form): feed a relay, drain the rest.
    const relay = new PassThrough();
    try {
      if (failure) throw new HttpError(400, 'aborted', 'upload aborted');
      if (stream.errored || (stream.destroyed && !stream.readableEnded)) throw stream.errored ?? new Error('file part was cut short');
      stream.on('error', (err) => relay.destroy(err));
      stream.pipe(relay);
      const res = await deps.ingestor.ingestStream(relay, { source: 'upload' });
      entry.status = res.outcome === 'ignored' ? 'ignored' : 'stored';
      entry.sop_instance_uid = res.sopInstanceUid;
      entry.study_instance_uid = res.studyInstanceUid;
      entry.series_instance_uid = res.seriesInstanceUid;
      const w = [...res.warnings];
      if (res.outcome === 'replaced') w.push('replaced an instance already stored with the same SOP Instance UID');
      if (res.outcome === 'ignored') w.push('already stored; ignored (duplicate policy)');
      if (w.length) entry.warnings = w;
    } catch (err) {
      entry.status = 'failed';
      if (err instanceof RadiantError || err instanceof HttpError) entry.error = err.message;
      else {
        entry.error = 'could not read the file part';
        deps.log.warn({ err: errorMessage(err), requestId: ctx.state.requestId }, 'upload: file part failed');
      }
    } finally {
      stream.unpipe(relay);
      stream.resume();
    }
  };

  bb.on('field', (name, value) => {
    if (name !== 'patient_id') return;
    const parsed = uploadPatientId.safeParse(value);
    if (parsed.success) patientIdField = parsed.data;
    else
      failure ??= new HttpError(
        400,
        'invalid_request',
        'patient_id is not a valid Patient ID',
        parsed.error.issues.map((i) => i.message),
      );
  });
  bb.on('file', (field, stream, info) => {
    // An error on a part waiting its turn must not be an unhandled 'error' event.
    stream.on('error', () => undefined);
    const entry: UploadFileReport = { name: clipName(info.filename, files.length), status: 'failed' };
    files.push(entry);
    if (!FILE_FIELDS.has(field)) {
      entry.error = `unexpected file field ${JSON.stringify(field.slice(0, 64))}; use "files"`;
      stream.resume();
      return;
    }
    queued++;
    chain = chain
      .then(() => ingestOne(stream, entry))
      .finally(() => {
        queued--;
        if (queued < MAX_QUEUED) resumeBody?.();
      });
  });
  bb.on('filesLimit', () => warnings.push(`only the first ${MAX_FILES} files were read`));

  let received = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      received += chunk.length;
      if (received > limit) {
        cb(tooLarge(limit));
        return;
      }
      // Parts that busboy has parsed but that wait their turn hold their data in memory: stop
      // reading the request while too many wait.
      if (queued >= MAX_QUEUED) {
        resumeBody = () => {
          resumeBody = undefined;
          cb(null, chunk);
        };
      } else cb(null, chunk);
    },
  });

  // The request is piped by hand, not through pipeline(): on a failure it must stay open for
  // the answer (sent with Connection: close, so the rest of the body is never read).
  const source = ctx.req;
  const onSourceError = (err: Error) => meter.destroy(err);
  // A client that goes away mid-body: 'close' without the end of the body.
  const onSourceClose = () => {
    if (!source.readableEnded) meter.destroy(new Error('the client closed the connection'));
  };
  source.on('error', onSourceError);
  source.on('close', onSourceClose);
  source.pipe(meter);
  try {
    await pipeline(meter, bb);
  } catch (err) {
    failure ??= err instanceof HttpError ? err : new HttpError(400, 'invalid_multipart', `cannot read the form: ${errorMessage(err)}`);
  } finally {
    source.unpipe(meter);
    source.off('error', onSourceError);
    source.off('close', onSourceClose);
  }
  await chain;
  if (failure) {
    if (!source.readableEnded) ctx.set('Connection', 'close');
    // What happened to the files read before the failure (some may be stored).
    if (files.length === 0) throw failure;
    throw new HttpError(
      failure.status,
      failure.code,
      failure.message,
      { ...(failure.details === undefined ? {} : { reason: failure.details }), files },
      failure.headers,
    );
  }
  if (files.length === 0) throw new HttpError(400, 'no_files', 'no files in the form (field "files")');

  // Where the stored instances landed, from the index: study ids, series, the PatientID check.
  const located = await locateInstances(
    deps.db,
    files.flatMap((f) => (f.status !== 'failed' && f.sop_instance_uid ? [f.sop_instance_uid] : [])),
  );
  const studies = new Map<string, number>();
  const series = new Set<string>();
  let firstPatientId: string | null = null;
  for (const f of files) {
    if (f.status === 'failed' || !f.sop_instance_uid) continue;
    const where = located.get(f.sop_instance_uid);
    if (!where) continue;
    studies.set(where.studyInstanceUid, where.studyPk);
    series.add(where.seriesInstanceUid);
    firstPatientId ??= where.patientId;
    if (patientIdField !== undefined && where.patientId !== patientIdField) {
      (f.warnings ??= []).push(
        `PatientID in the file is ${JSON.stringify(where.patientId)}, not ${JSON.stringify(patientIdField)}; stored as received`,
      );
    }
  }
  const ok = files.filter((f) => f.status !== 'failed').length;
  const [first] = studies.entries();
  const report: UploadReport = {
    study_id: first ? first[1] : null,
    study_instance_uid: first ? first[0] : null,
    patient_id: firstPatientId ?? patientIdField ?? null,
    series_count: series.size,
    total_images: ok,
    status: ok === files.length ? 'stored' : ok > 0 ? 'partial' : 'failed',
    files,
  };
  if (studies.size > 1) report.studies = [...studies].map(([uid, pk]) => ({ study_id: pk, study_instance_uid: uid }));
  if (warnings.length) report.warnings = warnings;
  return report;
}

documentRoutes(
  secured('images:write', {
    method: 'post',
    path: '/api/studies/upload',
    tags: ['studies'],
    summary: 'Upload DICOM files',
    operationId: 'uploadStudy',
    description:
      "Each file goes through the node's one ingest path (as C-STORE and STOW-RS), one after the other, streamed. Files that are " +
      'not acceptable DICOM are reported by name; the others are stored. `patient_id` is checked, not applied: the node never ' +
      'rewrites DICOM, so a file with another PatientID is stored as received with a warning. Send `patient_id` before the ' +
      'files. The whole body is limited by MAX_UPLOAD_BYTES (413).',
    request: {
      body: {
        required: true,
        content: {
          'multipart/form-data': {
            schema: z.object({
              patient_id: uploadPatientId.optional().describe('Expected DICOM PatientID'),
              files: z.array(z.string().meta({ format: 'binary', contentMediaType: 'application/dicom' })),
            }),
            encoding: { files: { contentType: 'application/dicom, application/octet-stream' } },
          },
        },
      },
    },
    responses: {
      201: ok('At least one file stored (status stored or partial)', ref('UploadReport')),
      400: E[400],
      ...GUARDED,
      413: E[413],
      415: E[415],
      422: ok('No file stored: the report, with an error', { allOf: [ref('Error'), ref('UploadReport')] }),
    },
  }),
);
