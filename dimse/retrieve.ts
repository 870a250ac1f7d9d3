import dimse from 'dcmjs-dimse';
import type { Db } from '../src/db/connection.js';
import { retrievableInstances, type RetrievableInstance, type RetrieveFilter } from '../src/catalog/catalog.js';
import { DimseStatus } from '../src/dicom/dimse-status.js';
import { TS } from '../src/dicom/transfer-syntax.js';
import { errorMessage, RadiantError } from '../src/errors.js';
import type { AssociationContext, CGetRequest, CGetResponse, CMoveRequest, CMoveResponse, NodeParts, Respond } from './services.js';
import type { RunHooks, StoreItem, StoreReport } from './store-scu.js';
import { dimseStatusOf } from './error-status.js';

/**
 * What C-MOVE and C-GET share (PS3.4 C.4.2, C.4.3): the Patient Root / Study Root retrieve
 * models, resolving an identifier to stored instances, the response statuses, counting, and
 * C-CANCEL bookkeeping.
 */

export const QR = {
  PatientRootMove: '1.2.840.10008.5.1.4.1.2.1.2',
  StudyRootMove: '1.2.840.10008.5.1.4.1.2.2.2',
  PatientRootGet: '1.2.840.10008.5.1.4.1.2.1.3',
  StudyRootGet: '1.2.840.10008.5.1.4.1.2.2.3',
} as const;

type Level = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';

/** An identifier that does not fit the model: 0xA900 (the retrieve table's 'mismatch'). */
export class IdentifierError extends RadiantError {
  constructor(message: string) {
    super('mismatch', message);
    this.name = 'IdentifierError';
  }
}

function values(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : String(v).split('\\');
  return list.map((x) => String(x).trim()).filter(Boolean);
}

/** A stored instance to retrieve, with its study and patient (for the audit row). */
export type RetrieveItem = RetrievableInstance;

/** The instances an identifier names (hierarchical retrieve, PS3.4 C.4.2.2.1). */
export async function resolveIdentifier(db: Db, sopClass: string, elements: Record<string, unknown>): Promise<RetrieveItem[]> {
  const level = String(elements.QueryRetrieveLevel ?? '')
    .trim()
    .toUpperCase() as Level;
  const patientRoot = sopClass === QR.PatientRootMove || sopClass === QR.PatientRootGet;
  const levels: Level[] = patientRoot ? ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'] : ['STUDY', 'SERIES', 'IMAGE'];
  if (!levels.includes(level)) throw new IdentifierError(`Query/Retrieve Level "${level}" not valid for this model`);
  const patientIds = values(elements.PatientID);
  const studies = values(elements.StudyInstanceUID);
  const series = values(elements.SeriesInstanceUID);
  const sops = values(elements.SOPInstanceUID);
  const need = (list: string[], name: string) => {
    if (!list.length) throw new IdentifierError(`${name} is required at level ${level}`);
  };
  let filter: RetrieveFilter;
  if (level === 'PATIENT') {
    need(patientIds, 'PatientID');
    filter = { patientIds };
  } else if (level === 'STUDY') {
    need(studies, 'StudyInstanceUID');
    filter = { studyInstanceUids: studies };
  } else if (level === 'SERIES') {
    need(series, 'SeriesInstanceUID');
    filter = { seriesInstanceUids: series, studyInstanceUids: studies };
  } else {
    need(sops, 'SOPInstanceUID');
    filter = { sopInstanceUids: sops, seriesInstanceUids: series, studyInstanceUids: studies };
  }
  return retrievableInstances(db, filter);
}

/** C-CANCEL requests by association and Message ID. */
export class CancelRegistry {
  private readonly cancelled = new WeakMap<object, Set<number>>();

  cancel(ctx: AssociationContext, messageId: number): void {
    const set = this.cancelled.get(ctx.association) ?? new Set<number>();
    set.add(messageId);
    this.cancelled.set(ctx.association, set);
  }

  isCancelled(ctx: AssociationContext, messageId: number): boolean {
    return this.cancelled.get(ctx.association)?.has(messageId) ?? false;
  }

  forget(ctx: AssociationContext, messageId: number): void {
    this.cancelled.get(ctx.association)?.delete(messageId);
  }
}

type RetrieveResponse = CMoveResponse | CGetResponse;
type RetrieveRequest = CMoveRequest | CGetRequest;

/** A response with the counts of a report (Remaining only in pending and cancel responses). */
export function countsResponse<R extends RetrieveResponse>(
  make: () => R,
  status: number,
  report: Pick<StoreReport, 'completed' | 'warning' | 'failed' | 'remaining'>,
): R {
  const r = make();
  r.setStatus(status);
  if (status === DimseStatus.Pending || status === DimseStatus.Cancel) r.setRemaining(report.remaining);
  r.setCompleted(report.completed);
  r.setFailures(report.failed);
  r.setWarnings(report.warning);
  return r;
}

/** The final response after the sub-operations (PS3.4 C.4.2.3.1, C.4.3.3.1). */
export function finalResponse<R extends RetrieveResponse>(
  ctx: AssociationContext,
  request: RetrieveRequest,
  make: () => R,
  report: StoreReport,
): R {
  let status: number;
  if (report.cancelled) status = DimseStatus.Cancel;
  else if (report.failed === 0 && report.warning === 0) status = DimseStatus.Success;
  else if (report.completed === 0 && report.warning === 0) status = DimseStatus.UnableToPerformSubOperations;
  else status = DimseStatus.SubOperationsWarning;
  const r = countsResponse(make, status, report);
  const failed = report.results.filter((x) => x.outcome === 'failed').map((x) => x.sopInstanceUid);
  if (failed.length && status !== DimseStatus.Success) {
    const ts = ctx.association.getAcceptedPresentationContextFromRequest(request)?.getAcceptedTransferSyntaxUid();
    r.setDataset(new dimse.Dataset({ FailedSOPInstanceUIDList: failed }, ts ?? TS.ImplicitVRLittleEndian));
    const first = report.results.find((x) => x.outcome === 'failed');
    if (first?.comment) r.setErrorComment(errorComment(first.comment));
  }
  return r;
}

export function errorResponse<R extends RetrieveResponse>(make: () => R, status: number, comment: string): R {
  const r = make();
  r.setStatus(status);
  r.setErrorComment(errorComment(comment));
  return r;
}

/** ErrorComment is LO: 64 characters at most. */
export function errorComment(message: string): string {
  const ascii = message.replace(/[^\x20-\x7e]/g, '?');
  return ascii.length > 64 ? `${ascii.slice(0, 61)}...` : ascii;
}

export function identifierOf(request: RetrieveRequest): Record<string, unknown> {
  return (request.getDataset()?.getElements() ?? {}) as Record<string, unknown>;
}

export interface RetrieveRun<R extends RetrieveResponse> {
  kind: 'move' | 'get';
  core: NodeParts;
  ctx: AssociationContext;
  request: RetrieveRequest;
  make: () => R;
  respond: Respond<R>;
  cancels: CancelRegistry;
  /** The sub-operations: the resolved instances sent on (C-MOVE: to the destination; C-GET: back). */
  send(items: StoreItem[], hooks: RunHooks): Promise<StoreReport>;
  /** Logged and audited with the counts (the Move Destination). */
  details?: Record<string, unknown>;
}

/**
 * The flow C-MOVE and C-GET share: resolve the identifier, run the sub-operations with a
 * pending response after each and C-CANCEL (or the caller leaving) checked before each, send the
 * final response, log and audit the counts. Failures of the flow itself answer 0xC000.
 */
export function runRetrieve<R extends RetrieveResponse>(run: RetrieveRun<R>): void {
  const { kind, core, ctx, request, make, respond, cancels } = run;
  const messageId = request.getMessageId();
  const label = kind === 'move' ? 'C-MOVE' : 'C-GET';
  void (async () => {
    let items: RetrieveItem[];
    try {
      items = await resolveIdentifier(core.db, request.getAffectedSopClassUid(), identifierOf(request));
    } catch (err) {
      if (!(err instanceof IdentifierError)) throw err;
      refused(run, DimseStatus.IdentifierDoesNotMatchSopClass, err.message);
      return respond(errorResponse(make, DimseStatus.IdentifierDoesNotMatchSopClass, err.message));
    }
    const started = Date.now();
    // A caller that went away gets no more sub-operations.
    let callerGone = false;
    void ctx.closed.then(() => (callerGone = true));
    const report = await run.send(items, {
      progress: (r) => {
        if (r.remaining > 0) respond(countsResponse(make, DimseStatus.Pending, r));
      },
      cancelled: () => callerGone || cancels.isCancelled(ctx, messageId),
    });
    cancels.forget(ctx, messageId);
    const final = finalResponse(ctx, request, make, report);
    const finalStatus = final.getStatus();
    if (!callerGone) respond(final);
    const counts = {
      matched: items.length,
      completed: report.completed,
      warning: report.warning,
      failed: report.failed,
      cancelled: report.cancelled,
    };
    core.log.info({ calling: ctx.callingAeTitle, ...run.details, ...counts, ms: Date.now() - started }, `${label} done`);
    // What was retrieved, by identifiers (bounded lists; one study or patient also in its column).
    const studies = [...new Set(items.map((i) => i.study_instance_uid))];
    const patients = [...new Set(items.map((i) => i.patient_id))];
    void core.audit.record({
      actorType: 'ae',
      actor: ctx.callingAeTitle,
      peer: ctx.peer,
      action: `dimse.${kind}`,
      resourceType: 'study',
      studyInstanceUid: studies.length === 1 ? studies[0] : undefined,
      patientId: patients.length === 1 ? patients[0] : undefined,
      outcome: report.failed > 0 && report.completed === 0 ? 'failure' : 'success',
      status: finalStatus,
      details: {
        ...run.details,
        level: identifierLevel(request),
        ...counts,
        studies: studies.slice(0, AUDIT_LISTED),
        patients: patients.slice(0, AUDIT_LISTED),
      },
    });
  })().catch((err: unknown) => {
    core.log.error({ err: errorMessage(err), calling: ctx.callingAeTitle }, `${label} failed`);
    const status = dimseStatusOf('retrieve', err);
    refused(run, status, errorMessage(err));
    respond(errorResponse(make, status, errorMessage(err)));
  });
}

/** At most this many Study UIDs / Patient IDs in a retrieve's audit row. */
const AUDIT_LISTED = 20;

function identifierLevel(request: RetrieveRequest): string {
  return String(identifierOf(request).QueryRetrieveLevel ?? '')
    .trim()
    .toUpperCase();
}

/** The keys that name what a refused retrieve asked for (identifiers only), for its audit row. */
function askedFor(request: RetrieveRequest): Record<string, string> {
  const elements = identifierOf(request);
  const out: Record<string, string> = {};
  for (const key of ['PatientID', 'StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID']) {
    const v = values(elements[key]);
    if (v.length) out[key] = v.slice(0, AUDIT_LISTED).join('\\');
  }
  return out;
}

/** A retrieve refused before any sub-operation (bad identifier, internal error): audited as a failure. */
export function refused(
  run: Pick<RetrieveRun<RetrieveResponse>, 'kind' | 'core' | 'ctx' | 'request' | 'details'>,
  status: number,
  reason: string,
): void {
  const asked = askedFor(run.request);
  void run.core.audit.record({
    actorType: 'ae',
    actor: run.ctx.callingAeTitle,
    peer: run.ctx.peer,
    action: `dimse.${run.kind}`,
    resourceType: 'study',
    studyInstanceUid: asked.StudyInstanceUID?.includes('\\') ? undefined : asked.StudyInstanceUID,
    patientId: asked.PatientID?.includes('\\') ? undefined : asked.PatientID,
    outcome: 'failure',
    status,
    details: { ...run.details, level: identifierLevel(run.request), asked, reason: reason.slice(0, 200) },
  });
}
