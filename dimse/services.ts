import type dimse from 'dcmjs-dimse';
import type { AuditLog } from '../src/audit/audit.js';
import type { Config } from '../src/config.js';
import type { Db } from '../src/db/connection.js';
import type { Transcoder } from '../src/dicom/transcoder.js';
import type { Logger } from '../src/logger.js';
import type { BlobStorage } from '../storage/types.js';

/**
 * DIMSE services beyond C-ECHO/C-STORE (query/retrieve, storage commitment), each in its own
 * module and handed to the SCP here, so scp.ts stays the association and storage plumbing.
 * A service answers through `respond`, which may be called several times: each call sends its
 * responses at once (a C-FIND streams its pending responses as rows are read; a C-MOVE reports
 * progress), and the final (non-pending) response must come last.
 */

export type CFindRequest = InstanceType<typeof dimse.requests.CFindRequest>;
export type CMoveRequest = InstanceType<typeof dimse.requests.CMoveRequest>;
export type CGetRequest = InstanceType<typeof dimse.requests.CGetRequest>;
export type CCancelRequest = InstanceType<typeof dimse.requests.CCancelRequest>;
export type NActionRequest = InstanceType<typeof dimse.requests.NActionRequest>;
export type CFindResponse = InstanceType<typeof dimse.responses.CFindResponse>;
export type CMoveResponse = InstanceType<typeof dimse.responses.CMoveResponse>;
export type CGetResponse = InstanceType<typeof dimse.responses.CGetResponse>;
export type NActionResponse = InstanceType<typeof dimse.responses.NActionResponse>;
export type ScpInstance = InstanceType<typeof dimse.Scp>;
export type AssociationT = InstanceType<typeof dimse.association.Association>;

/** What a service knows of the association a request came on. */
export interface AssociationContext {
  callingAeTitle: string;
  calledAeTitle: string;
  peer: string;
  /** The peer's address, without the port (where a storage commitment report may be sent). */
  peerAddress: string;
  /** The association (accepted presentation contexts, roles), for C-GET's sub-operations. */
  association: AssociationT;
  /** The SCP itself: C-GET sends its C-STORE requests with `scp.sendRequests`. */
  scp: ScpInstance;
  /** Resolves when the association is over (release requested, aborted or dropped). */
  closed: Promise<void>;
}

export type Respond<R> = (responses: R | R[]) => void;

/**
 * C-FIND's answer channel: `respond` as for the other services, and `pending`, which sends pending
 * responses whose identifiers the service encoded itself (in the transfer syntax of the request's
 * identifier), written as P-DATA-TF PDUs by the SCP in one socket write per batch
 * (dimse/pdata.ts) instead of through dcmjs-dimse's per-message data set model.
 */
export interface FindRespond extends Respond<CFindResponse> {
  (responses: CFindResponse | CFindResponse[]): void;
  pending?(status: number, identifiers: Buffer[]): void;
}

export interface ScpServices {
  /** Abstract syntaxes these services accept (Q/R information models, storage commitment). */
  abstractSyntaxes: ReadonlySet<string>;
  find?(ctx: AssociationContext, request: CFindRequest, respond: FindRespond): void;
  move?(ctx: AssociationContext, request: CMoveRequest, respond: Respond<CMoveResponse>): void;
  get?(ctx: AssociationContext, request: CGetRequest, respond: Respond<CGetResponse>): void;
  /** A C-CANCEL for the request with this Message ID on this association. */
  cancel?(ctx: AssociationContext, messageIdBeingRespondedTo: number): void;
  nAction?(ctx: AssociationContext, request: NActionRequest, respond: Respond<NActionResponse>): void;
  /**
   * Whether a calling AE may associate at all (the allowlist); undefined: everyone may.
   * Asynchronous because the remote-node table lives in the database.
   */
  admitCaller?(callingAeTitle: string, peerAddress: string): Promise<boolean>;
}

/**
 * The node's parts the DIMSE services use, built and handed over by the composition root
 * (src/app.ts), which the services never import.
 */
export interface NodeParts {
  db: Db;
  /** The index for searches (C-FIND), beside ingest's writer on SQLite; `db` when absent. */
  readDb?: Db;
  log: Logger;
  audit: AuditLog;
}

/** What `nodeServices` needs: the parts above, blobs and transcoding for the SCU, and the DICOM settings. */
export interface NodeServiceDeps extends NodeParts {
  storage: BlobStorage;
  transcoder: Transcoder;
  config: Pick<Config, 'mode' | 'dicom'>;
}

export const NO_SERVICES: ScpServices = { abstractSyntaxes: new Set() };
