import type { Db } from '../src/db/connection.js';
import dimse from 'dcmjs-dimse';
import type { AuditLog } from '../src/audit/audit.js';
import { DimseStatus } from '../src/dicom/dimse-status.js';
import { TS } from '../src/dicom/transfer-syntax.js';
import { errorMessage, RadiantError } from '../src/errors.js';
import { dimseStatusOf } from './error-status.js';
import type { Logger } from '../src/logger.js';
import type { RemoteNode } from '../src/catalog/remote-nodes.js';
import { instancesByUid } from '../src/catalog/catalog.js';
import type { BlobStorage } from '../storage/types.js';
import type { AssociationContext, NActionRequest, NActionResponse, Respond } from './services.js';

/**
 * Storage Commitment Push Model SCP (PS3.4 Annex J): an N-ACTION (Action Type 1, "Request
 * Storage Commitment") names instances by SOP Class/Instance UID under a Transaction UID; the
 * node answers the N-ACTION at once, then checks each instance (indexed, same SOP Class, and its
 * blob present in storage) and reports with an N-EVENT-REPORT: Event Type 1 when all are safely
 * stored, 2 when some are not (FailedSOPSequence with FailureReason 0x0112 "No such object
 * instance" or 0x0119 "Class/Instance conflict").
 *
 * The report goes on the requesting association while it is open (the SCU may wait for it
 * there); otherwise on a new association to the requester, whose address comes from the
 * remote_nodes table (an unknown AE gets no report, with a warning in the log). The node keeps
 * no commitment state: a report that cannot be delivered is logged, and the SCU asks again.
 */

export const STORAGE_COMMITMENT_PUSH = '1.2.840.10008.1.20.1';
/** The well-known SOP Instance of the Storage Commitment Push Model. */
export const STORAGE_COMMITMENT_INSTANCE = '1.2.840.10008.1.20.1.1';

const { Dataset, Client } = dimse;
const { NActionResponse: NActionResponseC } = dimse.responses;
const { NEventReportRequest } = dimse.requests;
const IMPLICIT_LE = TS.ImplicitVRLittleEndian;

export interface SopRef {
  sopClassUid: string;
  sopInstanceUid: string;
}

export interface CommitmentResult {
  committed: SopRef[];
  failed: Array<SopRef & { reason: number }>;
}

/** Which of the instances are safely stored: in the index with that SOP Class, blob present. */
export async function checkCommitment(db: Db, storage: BlobStorage, refs: SopRef[]): Promise<CommitmentResult> {
  const known = await instancesByUid(
    db,
    refs.map((r) => r.sopInstanceUid),
  );
  const out: CommitmentResult = { committed: [], failed: [] };
  for (const ref of refs) {
    const k = known.get(ref.sopInstanceUid);
    if (!k) out.failed.push({ ...ref, reason: DimseStatus.NoSuchObjectInstance });
    else if (k.sopClassUid !== ref.sopClassUid) out.failed.push({ ...ref, reason: DimseStatus.ClassInstanceConflict });
    else if (!(await storage.exists(k.storageKey))) out.failed.push({ ...ref, reason: DimseStatus.NoSuchObjectInstance });
    else out.committed.push(ref);
  }
  return out;
}

/** The N-EVENT-REPORT data set of a result (PS3.4 J.3.3.1.1, Table J.3-2). */
export function eventReportElements(transactionUid: string, aeTitle: string, result: CommitmentResult): Record<string, unknown> {
  const out: Record<string, unknown> = { TransactionUID: transactionUid, RetrieveAETitle: aeTitle };
  if (result.committed.length) {
    out.ReferencedSOPSequence = result.committed.map((r) => ({
      ReferencedSOPClassUID: r.sopClassUid,
      ReferencedSOPInstanceUID: r.sopInstanceUid,
    }));
  }
  if (result.failed.length) {
    out.FailedSOPSequence = result.failed.map((r) => ({
      ReferencedSOPClassUID: r.sopClassUid,
      ReferencedSOPInstanceUID: r.sopInstanceUid,
      FailureReason: r.reason,
    }));
  }
  return out;
}

export interface CommitmentDeps {
  db: Db;
  storage: BlobStorage;
  aeTitle: string;
  log: Logger;
  audit?: AuditLog;
  findRemoteNode(aeTitle: string): Promise<RemoteNode | undefined>;
}

/** An N-ACTION the node refuses; its status is the commitment table's (dimse/error-status.ts). */
class BadRequest extends RadiantError {
  constructor(kind: 'unsupported' | 'not-found' | 'invalid-input', message: string) {
    super(kind, message);
    this.name = 'BadRequest';
  }
}

function str(v: unknown): string {
  if (Array.isArray(v)) return v.length ? str(v[0]) : '';
  return v === null || v === undefined ? '' : String(v).trim();
}

function parseAction(request: NActionRequest): { transactionUid: string; refs: SopRef[] } {
  if (request.getActionTypeId() !== 1) throw new BadRequest('unsupported', 'only Action Type 1 is supported');
  const instance = request.getRequestedSopInstanceUid();
  if (instance && instance !== STORAGE_COMMITMENT_INSTANCE) {
    throw new BadRequest('not-found', 'not the Storage Commitment Push Model instance');
  }
  const el = request.getDataset()?.getElements() ?? {};
  const transactionUid = str(el.TransactionUID);
  if (!transactionUid) throw new BadRequest('invalid-input', 'Transaction UID (0008,1195) missing');
  const seq = el.ReferencedSOPSequence;
  if (!Array.isArray(seq) || seq.length === 0) {
    throw new BadRequest('invalid-input', 'Referenced SOP Sequence (0008,1199) missing or empty');
  }
  const refs = seq.map((item: Record<string, unknown>) => ({
    sopClassUid: str(item?.ReferencedSOPClassUID),
    sopInstanceUid: str(item?.ReferencedSOPInstanceUID),
  }));
  if (refs.some((r) => !r.sopClassUid || !r.sopInstanceUid)) {
    throw new BadRequest('invalid-input', 'an item lacks its SOP Class or Instance UID');
  }
  return { transactionUid, refs };
}

export interface CommitmentService {
  nAction(ctx: AssociationContext, request: NActionRequest, respond: Respond<NActionResponse>): void;
}

export function storageCommitmentService(deps: CommitmentDeps): CommitmentService {
  const { db, storage, aeTitle, log, audit } = deps;

  function eventReport(transactionUid: string, result: CommitmentResult) {
    const req = new NEventReportRequest(STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_INSTANCE, result.failed.length ? 2 : 1);
    req.setDataset(new Dataset(eventReportElements(transactionUid, aeTitle, result), IMPLICIT_LE));
    return req;
  }

  /** A new association to the requester (we are its association requester, in the SCP role). */
  function sendNewAssociation(node: RemoteNode, transactionUid: string, result: CommitmentResult): Promise<number | undefined> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      const req = eventReport(transactionUid, result);
      let status: number | undefined;
      req.on('response', (r: { getStatus(): number }) => (status = r.getStatus()));
      client.addRequest(req);
      client.on('associationRejected', () => reject(new Error('association rejected')));
      client.on('networkError', (e: Error) => reject(e));
      client.on('closed', () => resolve(status));
      client.send(node.host, node.port, aeTitle, node.aeTitle, { connectTimeout: 10_000, associationTimeout: 30_000, pduTimeout: 30_000 });
      // PS3.4 J.3.3: the requester of this association is the Storage Commitment SCP; say so
      // with an SCP/SCU Role Selection item (SCU role 0, SCP role 1).
      const network = (client as unknown as { network?: { sendAssociationRequest(a: unknown): void } }).network;
      if (network) {
        const original = network.sendAssociationRequest.bind(network);
        network.sendAssociationRequest = (a: unknown) => {
          const association = a as InstanceType<typeof dimse.association.Association>;
          for (const { context } of association.getPresentationContexts()) {
            if (context.getAbstractSyntaxUid() === STORAGE_COMMITMENT_PUSH) {
              context.setUserRole(false);
              context.setProviderRole(true);
            }
          }
          original(a);
        };
      }
    });
  }

  async function report(ctx: AssociationContext, open: () => boolean, transactionUid: string, refs: SopRef[]): Promise<void> {
    const result = await checkCommitment(db, storage, refs);
    let via: 'same-association' | 'new-association' | 'none' = 'none';
    if (open()) {
      via = 'same-association';
      const req = eventReport(transactionUid, result);
      req.on('response', (r: { getStatus(): number }) =>
        log.debug({ status: r.getStatus(), calling: ctx.callingAeTitle }, 'storage commitment report answered'),
      );
      ctx.scp.sendRequests(req);
    } else {
      const node = await deps.findRemoteNode(ctx.callingAeTitle);
      if (!node) {
        log.warn({ calling: ctx.callingAeTitle }, 'storage commitment report not sent: the requester is not in remote_nodes');
      } else {
        try {
          const status = await sendNewAssociation(node, transactionUid, result);
          via = 'new-association';
          log.info({ calling: ctx.callingAeTitle, status }, 'storage commitment report sent on a new association');
        } catch (err) {
          log.warn({ calling: ctx.callingAeTitle, err: errorMessage(err) }, 'storage commitment report could not be sent');
        }
      }
    }
    void audit?.record({
      actorType: 'ae',
      actor: ctx.callingAeTitle,
      peer: ctx.peer,
      action: 'dimse.storage-commitment',
      outcome: result.failed.length ? 'failure' : 'success',
      details: { requested: refs.length, committed: result.committed.length, failed: result.failed.length, via },
    });
  }

  return {
    nAction(ctx, request, respond) {
      let isOpen = true;
      void ctx.closed.then(() => (isOpen = false));
      const response = NActionResponseC.fromRequest(request);
      let parsed;
      try {
        parsed = parseAction(request);
      } catch (err) {
        const status = dimseStatusOf('commitment', err);
        response.setStatus(status);
        response.setErrorComment(errorMessage(err).slice(0, 64));
        log.info({ calling: ctx.callingAeTitle, status: `0x${status.toString(16)}` }, 'storage commitment request refused');
        respond(response);
        return;
      }
      response.setStatus(DimseStatus.Success);
      respond(response);
      const { transactionUid, refs } = parsed;
      void report(ctx, () => isOpen, transactionUid, refs).catch((err: unknown) =>
        log.error({ err: errorMessage(err), calling: ctx.callingAeTitle }, 'storage commitment failed'),
      );
    },
  };
}
