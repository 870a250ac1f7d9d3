import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import type { Ingestor } from '../src/ingest/ingest.js';
import { DimseStatus, isPendingStatus } from '../src/dicom/dimse-status.js';
import { RadiantError, errorMessage } from '../src/errors.js';
import { dimseStatusOf } from './error-status.js';
import type { Logger } from '../src/logger.js';
import { emitInLogContext } from '../src/observability/log-context.js';
import { countDimse } from '../src/observability/node-metrics.js';
import { SpanKind, SpanStatusCode, startSpan, withSpan, type Span } from '../src/observability/tracing.js';
import type { LimitReason, Slot } from './admission.js';
import { decideContext } from './negotiation.js';
import { messagePdus, responseCommandSet, writeMessage } from './pdata.js';
import { StoreSink } from './store-sink.js';
import type {
  AssociationContext,
  CCancelRequest,
  CFindRequest,
  CFindResponse,
  CGetRequest,
  CGetResponse,
  CMoveRequest,
  CMoveResponse,
  FindRespond,
  NActionRequest,
  NActionResponse,
  ScpServices,
} from './services.js';

const { Scp, Dataset } = dimse;
const {
  CEchoResponse,
  CStoreResponse,
  CFindResponse: CFindResponseC,
  CMoveResponse: CMoveResponseC,
  CGetResponse: CGetResponseC,
  NActionResponse: NActionResponseC,
} = dimse.responses;
const { PresentationContextResult, RejectResult, RejectSource, RejectReason, AbortSource, AbortReason } = dimse.constants;

/** CommandFields of the responses the node writes itself (PS3.7 E.1). */
const C_FIND_RSP = 0x8020;
const C_STORE_RSP = 0x8001;

type Association = InstanceType<typeof dimse.association.Association>;
type PresentationContext = InstanceType<typeof dimse.association.PresentationContext>;
type CEchoRequest = InstanceType<typeof dimse.requests.CEchoRequest>;
type CStoreRequest = InstanceType<typeof dimse.requests.CStoreRequest>;
type CEchoResponseT = InstanceType<typeof CEchoResponse>;
type CStoreResponseT = InstanceType<typeof CStoreResponse>;
type DatasetT = InstanceType<typeof Dataset>;

export interface ScpSettings {
  aeTitle: string;
  /** Largest PDU the node receives (announced in A-ASSOCIATE-AC). */
  maxPdu: number;
  checkCalledAe: boolean;
  acceptUnknownSopClasses: boolean;
  maxInstanceBytes: number;
  /** PS3.8 ARTIM: how long a connection may wait for its A-ASSOCIATE-RQ, or for the peer to close after RJ/release. */
  artimTimeoutMs: number;
  /** An established association with no traffic this long is aborted (A-ABORT, connection destroyed). */
  idleTimeoutMs: number;
}

/** How an association ended. */
export type AssociationEnd = 'release' | 'peer-abort' | 'idle-timeout' | 'connection-lost';

export interface AssociationSummary {
  callingAeTitle: string;
  calledAeTitle: string;
  peer: string;
  stored: number;
  failed: number;
  bytes: number;
  durationMs: number;
  /** Study Instance UIDs stored on this association (at most 20). */
  studies: string[];
  /** Patient IDs of what was stored (at most 20; '' when the data sets had none). */
  patients: string[];
  endedBy: AssociationEnd;
}

/** Why a connection got no association. */
export type RefusalReason = LimitReason | 'called-ae' | 'calling-ae' | 'allowlist-error' | 'no-association-request';

export interface RefusedAssociation {
  reason: RefusalReason;
  peer: string;
  /** Absent when no A-ASSOCIATE-RQ came (ARTIM expired). */
  callingAeTitle?: string;
  calledAeTitle?: string;
}

/** At most this many Study UIDs / Patient IDs are kept per association for its audit row. */
const MAX_LISTED = 20;

export interface ScpDeps {
  settings: ScpSettings;
  ingestor: Ingestor;
  log: Logger;
  services: ScpServices;
  /**
   * A new TCP connection: false refuses it (too many connections without an association from
   * its address; it is destroyed at once); otherwise the function to call when it closes.
   */
  connectionOpened(socket: Socket): (() => void) | false;
  /** Admission control shared by all associations: a slot, or the limit that refuses it. */
  admit(callingAeTitle: string, peerAddress: string): Slot | LimitReason;
  onAssociationEnd(summary: AssociationSummary): void;
  onRefused(refusal: RefusedAssociation): void;
}

/** ErrorComment is LO: 64 characters at most (PS3.7 C.4). */
function errorComment(message: string): string {
  const ascii = message.replace(/[^\x20-\x7e]/g, '?');
  return ascii.length > 64 ? `${ascii.slice(0, 61)}...` : ascii;
}

/** A service the node does not provide on this association: refused, never silently empty. */
function refusal<R extends { setStatus(s: number): void }>(response: R): R {
  response.setStatus(DimseStatus.SopClassNotSupported);
  return response;
}

/** Ends an operation's span with its final DIMSE status (failure statuses mark it failed; warnings do not). */
function endOperationSpan(span: Span, status: number): void {
  span.setAttribute('dicom.dimse.status', `0x${status.toString(16).padStart(4, '0')}`);
  const failed = status !== DimseStatus.Success && (status & 0xf000) !== 0xb000 && status !== 0x0107 && status !== 0x0116;
  if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/**
 * Every log line of the association (the library's PDU handling, the node's services and the
 * ingest they call) carries one assocId: the socket's events all run in its log context.
 */
function withAssociationId(socket: Socket): Socket {
  emitInLogContext(socket, { assocId: randomUUID() });
  return socket;
}

/**
 * dcmjs-dimse creates one Scp per TCP connection from a class, so the node's dependencies are
 * closed over here rather than passed through its options bag.
 */
export function createScpClass(deps: ScpDeps): typeof Scp {
  const { settings, ingestor, log, services } = deps;
  const policy = { acceptUnknownSopClasses: settings.acceptUnknownSopClasses, serviceSyntaxes: services.abstractSyntaxes };

  return class RadiantScp extends Scp {
    private association: Association | undefined;
    /** An A-ASSOCIATE-RQ came (dcmjs-dimse sets `association` itself before telling us, so it cannot say). */
    private requested = false;
    /** The association's slot while it holds one (from A-ASSOCIATE-AC to its end, however it ends). */
    private slot: Slot | undefined;
    private readonly startedAt = Date.now();
    private readonly peer: string;
    private readonly address: string;
    private readonly conn: Socket;
    private readonly sinks = new WeakMap<CStoreRequest, StoreSink>();
    private stored = 0;
    private failed = 0;
    private bytes = 0;
    private readonly studies = new Set<string>();
    private readonly patients = new Set<string>();
    private context: AssociationContext | undefined;
    /** The association's trace span (OpenTelemetry), parent of its operations' spans. */
    private span: Span | undefined;
    /** ARTIM (PS3.8 9.1.5): set while waiting for the A-ASSOCIATE-RQ, or for the peer to close. */
    private artim: NodeJS.Timeout | undefined;
    private idleTimer: NodeJS.Timeout | undefined;
    private lastActivity = Date.now();
    /** Requests the node itself is still answering (C-STORE being ingested, C-FIND being read). */
    private busy = 0;
    private markClosed: () => void = () => undefined;
    private readonly closed = new Promise<void>((resolve) => {
      this.markClosed = resolve;
    });

    constructor(socket: Socket, opts?: ConstructorParameters<typeof Scp>[1]) {
      super(withAssociationId(socket), opts);
      this.conn = socket;
      this.address = socket.remoteAddress ?? '?';
      this.peer = `${this.address}:${socket.remotePort ?? '?'}`;
      const closedConnection = deps.connectionOpened(socket);
      if (!closedConnection) {
        log.warn({ peer: this.peer }, 'connection refused: too many connections without an association from this address');
        socket.destroy();
        return;
      }
      // dcmjs-dimse's own socket timeout and PDU timeout end() the socket (a half-close): a peer
      // that keeps its end open then keeps the connection for ever. The node's own timers (ARTIM,
      // idle) replace them and destroy the socket instead (DimseServer passes pduTimeout Infinity).
      socket.setTimeout(0);
      // Each C-STORE response is a small write the SCU waits for; Nagle would hold it back.
      socket.setNoDelay(true);
      this.startArtim();
      socket.on('data', () => this.touch());
      // The library ends its side on a protocol error: the association is over, and the peer
      // gets ARTIM's time to close before the socket is destroyed.
      socket.once('finish', () => {
        this.endAssociation('connection-lost');
        this.startArtim();
      });
      socket.once('error', () => this.endAssociation('connection-lost'));
      socket.once('close', () => {
        this.stopTimers();
        this.endAssociation('connection-lost');
        closedConnection();
      });
    }

    /** PS3.8 ARTIM: (re)started while nothing but the peer's A-ASSOCIATE-RQ or its close is awaited. */
    private startArtim(): void {
      clearTimeout(this.artim);
      if (this.conn.destroyed) return;
      this.artim = setTimeout(() => {
        if (!this.requested) {
          log.warn({ peer: this.peer }, 'connection closed: no A-ASSOCIATE-RQ within the ARTIM timeout');
          deps.onRefused({ reason: 'no-association-request', peer: this.peer });
        } else log.debug({ peer: this.peer }, 'connection closed: the peer did not close it within the ARTIM timeout');
        this.conn.destroy();
      }, settings.artimTimeoutMs);
    }

    private stopTimers(): void {
      clearTimeout(this.artim);
      clearTimeout(this.idleTimer);
      this.artim = this.idleTimer = undefined;
    }

    /** Traffic on the association (a PDU received, a response sent): it is not idle. */
    private touch(): void {
      this.lastActivity = Date.now();
    }

    private armIdle(delayMs: number): void {
      clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(() => this.idleCheck(), Math.max(delayMs, 10));
    }

    private idleCheck(): void {
      if (!this.slot) return;
      const quietMs = Date.now() - this.lastActivity;
      if (this.busy > 0) return this.armIdle(settings.idleTimeoutMs);
      if (quietMs < settings.idleTimeoutMs) return this.armIdle(settings.idleTimeoutMs - quietMs);
      log.warn({ calling: this.context?.callingAeTitle, peer: this.peer, quietMs }, 'association aborted: idle timeout');
      // PS3.8 9.3.8: the node's upper layer (service provider) aborts; the slot is freed at once,
      // and the socket is destroyed (never merely half-closed) once the A-ABORT is written.
      this.sendAbort(AbortSource.ServiceProvider, AbortReason.NotSpecified);
      this.endAssociation('idle-timeout');
      this.destroySoon();
    }

    /** End the connection after what was written is flushed, and destroy it in any case shortly after. */
    private destroySoon(): void {
      const conn = this.conn;
      conn.end(() => conn.destroy());
      setTimeout(() => conn.destroy(), 1000).unref();
    }

    /** A-ASSOCIATE-RJ, recorded; the peer then has ARTIM's time to close the connection. */
    private refuse(refusal: Omit<RefusedAssociation, 'peer'>, result: number, source: number, reason: number): void {
      this.sendAssociationReject(result, source, reason);
      deps.onRefused({ ...refusal, peer: this.peer });
      this.startArtim();
    }

    override associationRequested(association: Association): void {
      clearTimeout(this.artim);
      if (this.requested) {
        // PS3.8 9.2.3 (AA-8): an A-ASSOCIATE-RQ on a connection that already had one is an
        // unexpected PDU. Answering it would take a second slot for one connection.
        log.warn({ peer: this.peer }, 'association aborted: a second A-ASSOCIATE-RQ on the connection');
        this.sendAbort(AbortSource.ServiceProvider, AbortReason.UnexpectedPdu);
        this.endAssociation('connection-lost');
        this.destroySoon();
        return;
      }
      this.requested = true;
      this.association = association;
      const called = association.getCalledAeTitle().trim();
      const calling = association.getCallingAeTitle().trim();
      const who = { callingAeTitle: calling, calledAeTitle: called };
      if (settings.checkCalledAe && called !== settings.aeTitle) {
        log.warn({ calling, called, peer: this.peer }, 'association rejected: called AE title not recognised');
        this.refuse({ ...who, reason: 'called-ae' }, RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized);
        return;
      }
      if (services.admitCaller) {
        void services.admitCaller(calling, this.address).then(
          (ok) => {
            if (ok) return this.admitAndAccept(association, calling);
            log.warn({ calling, peer: this.peer }, 'association rejected: calling AE title not allowed');
            const permanent = [RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized] as const;
            this.refuse({ ...who, reason: 'calling-ae' }, ...permanent);
          },
          (err: unknown) => {
            log.error({ err: errorMessage(err), calling, peer: this.peer }, 'association rejected: allowlist lookup failed');
            const transient = [RejectResult.Transient, RejectSource.ServiceUser, RejectReason.NoReasonGiven] as const;
            this.refuse({ ...who, reason: 'allowlist-error' }, ...transient);
          },
        );
        return;
      }
      this.admitAndAccept(association, calling);
    }

    private admitAndAccept(association: Association, calling: string): void {
      if (this.conn.destroyed) return;
      const called = association.getCalledAeTitle().trim();
      const slot = deps.admit(calling, this.address);
      if (typeof slot === 'string') {
        log.warn({ calling, peer: this.peer, limit: slot }, 'association rejected: too many associations');
        // PS3.8 9.3.4: local limit exceeded is a transient rejection by the presentation layer.
        this.refuse(
          { callingAeTitle: calling, calledAeTitle: called, reason: slot },
          RejectResult.Transient,
          RejectSource.ServiceProviderPresentation,
          RejectReason.LocalLimitExceeded,
        );
        return;
      }
      this.slot = slot;
      for (const { id } of association.getPresentationContexts()) {
        const context = association.getPresentationContext(id);
        const decision = decideContext(context.getAbstractSyntaxUid(), context.getTransferSyntaxUids(), policy);
        if (decision.accept) context.setResult(PresentationContextResult.Accept, decision.transferSyntaxUid);
        else if (decision.reason === 'abstract-syntax-not-supported')
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
        else context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      }
      log.debug({ calling, peer: this.peer }, 'association accepted');
      this.context = {
        callingAeTitle: calling,
        calledAeTitle: called,
        peer: this.peer,
        peerAddress: this.address,
        association,
        scp: this,
        closed: this.closed,
      };
      this.span = startSpan('DIMSE association', { 'dicom.calling_ae': calling, 'dicom.called_ae': called }, { kind: SpanKind.SERVER });
      this.sendAssociationAccept();
      this.touch();
      this.armIdle(settings.idleTimeoutMs);
    }

    /**
     * dcmjs-dimse announces min(peer's limit, ours) as the largest PDU it accepts, so a peer
     * announcing 16 KB (DCMTK's default) is made to send 16 KB PDUs. The limit each side
     * announces is its own receive limit (PS3.8 D.1): announce ours, then keep the peer's for
     * what the node sends.
     */
    override sendAssociationAccept(): void {
      const association = this.association!;
      const peerMax = association.getMaxPduLength();
      association.setMaxPduLength(settings.maxPdu);
      super.sendAssociationAccept();
      association.setMaxPduLength(peerMax === 0 ? settings.maxPdu : peerMax);
    }

    override associationReleaseRequested(): void {
      // Nothing more may be sent once the peer asked to release (a storage commitment report
      // then goes on a new association): services see the association as over from here, and
      // its slot is free. The peer closes the connection (PS3.8 Sta13), or ARTIM does.
      this.sendAssociationReleaseResponse();
      this.endAssociation('release');
      this.startArtim();
    }

    override abort(): void {
      log.info({ peer: this.peer }, 'association aborted by peer');
      this.endAssociation('peer-abort');
      // PS3.8 7.3.3: after an A-ABORT the transport connection is closed; DCMTK peers wait for it.
      this.conn.destroy();
    }

    override cEchoRequest(request: CEchoRequest, callback: (response: CEchoResponseT) => void): void {
      const response = CEchoResponse.fromRequest(request);
      response.setStatus(DimseStatus.Success);
      countDimse('C-ECHO', DimseStatus.Success);
      callback(response);
    }

    override cFindRequest(request: CFindRequest, callback: (responses: CFindResponse[]) => void): void {
      if (!services.find || !this.context) return callback([refusal(CFindResponseC.fromRequest(request))]);
      // The node is reading the index: the caller waiting for it is not idle.
      this.busy++;
      let finished = false;
      const span = this.operationSpan('C-FIND');
      const respond: FindRespond = Object.assign(
        this.respondVia('C-FIND', span, request, callback, () => {
          finished = true;
          this.busy--;
        }),
        { pending: (status: number, identifiers: Buffer[]) => !finished && this.sendPendingFind(request, status, identifiers) },
      );
      withSpan(span, () => services.find!(this.context!, request, respond));
    }

    /** Pending C-FIND responses with identifiers already encoded: their PDUs in one socket write. */
    private sendPendingFind(request: CFindRequest, status: number, identifiers: Buffer[]): void {
      if (identifiers.length === 0 || this.conn.destroyed) return;
      const context = this.association?.getAcceptedPresentationContextFromRequest(request);
      if (!context) return;
      this.touch();
      const command = responseCommandSet({
        affectedSopClassUid: request.getAffectedSopClassUid(),
        commandField: C_FIND_RSP,
        messageIdBeingRespondedTo: request.getMessageId(),
        status,
        hasDataset: true,
      });
      const maxPdu = this.association!.getMaxPduLength();
      const pdus = identifiers.flatMap((identifier) => messagePdus(context.getPresentationContextId(), maxPdu, command, identifier));
      this.conn.write(Buffer.concat(pdus));
    }

    override cMoveRequest(request: CMoveRequest, callback: (responses: CMoveResponse[]) => void): void {
      if (!services.move || !this.context) return callback([refusal(CMoveResponseC.fromRequest(request))]);
      const span = this.operationSpan('C-MOVE');
      withSpan(span, () => services.move!(this.context!, request, this.respondVia('C-MOVE', span, request, callback)));
    }

    override cGetRequest(request: CGetRequest, callback: (responses: CGetResponse[]) => void): void {
      if (!services.get || !this.context) return callback([refusal(CGetResponseC.fromRequest(request))]);
      const span = this.operationSpan('C-GET');
      withSpan(span, () => services.get!(this.context!, request, this.respondVia('C-GET', span, request, callback)));
    }

    /**
     * dcmjs-dimse's request callback is an async-eventemitter continuation: it may be called
     * once only (a second call throws "Callback was already called"). Pending responses are
     * therefore sent with sendResponse as they come, and the final one through the callback.
     */
    private respondVia<R extends CFindResponse | CMoveResponse | CGetResponse>(
      operation: string,
      span: Span,
      request: CFindRequest | CMoveRequest | CGetRequest,
      callback: (responses: R[]) => void,
      onFinal: () => void = () => undefined,
    ): (r: R | R[]) => void {
      let finished = false;
      return (r) => {
        for (const response of Array.isArray(r) ? r : [r]) {
          if (finished) return;
          const status = response.getStatus();
          // A long C-MOVE's caller only waits: each pending response counts as activity, so the
          // idle timeout does not cut it.
          this.touch();
          if (isPendingStatus(status)) {
            if (response instanceof CFindResponseC) this.sendResponse(request, response);
            else this.sendPendingRetrieve(request, response as CMoveResponse | CGetResponse);
          } else {
            finished = true;
            countDimse(operation, status);
            endOperationSpan(span, status);
            onFinal();
            callback([response]);
          }
        }
      };
    }

    /**
     * A pending C-MOVE/C-GET response (one per sub-operation: counts only, no data set), written
     * by the node (dimse/pdata.ts) rather than through dcmjs-dimse's command set writer.
     */
    private sendPendingRetrieve(request: CMoveRequest | CGetRequest, response: CMoveResponse | CGetResponse): void {
      const context = this.association?.getAcceptedPresentationContextFromRequest(request);
      if (!context || this.conn.destroyed) return;
      const command = responseCommandSet({
        affectedSopClassUid: request.getAffectedSopClassUid(),
        commandField: response.getCommandFieldType(),
        messageIdBeingRespondedTo: request.getMessageId(),
        status: response.getStatus(),
        hasDataset: false,
        counts: {
          remaining: response.getRemaining(),
          completed: response.getCompleted(),
          failed: response.getFailures(),
          warning: response.getWarnings(),
        },
      });
      writeMessage(this.conn, context.getPresentationContextId(), this.association!.getMaxPduLength(), command);
    }

    override nActionRequest(request: NActionRequest, callback: (response: NActionResponse) => void): void {
      if (!services.nAction || !this.context) return callback(refusal(NActionResponseC.fromRequest(request)));
      services.nAction(this.context, request, (r) =>
        (Array.isArray(r) ? r : [r]).forEach((x) => {
          countDimse('N-ACTION', x.getStatus());
          callback(x);
        }),
      );
    }

    override cCancelRequest(request: CCancelRequest): void {
      const id = request.getCommandDataset().getElement('MessageIDBeingRespondedTo');
      if (this.context && typeof id === 'number') services.cancel?.(this.context, id);
    }

    override createStoreWritableStream(context: PresentationContext, request: CStoreRequest): Writable {
      const sink = new StoreSink(
        ingestor.tempPath(),
        {
          sopClassUid: request.getAffectedSopClassUid(),
          sopInstanceUid: request.getAffectedSopInstanceUid(),
          transferSyntaxUid: context.getAcceptedTransferSyntaxUid() ?? '',
          sourceAeTitle: this.association?.getCallingAeTitle(),
        },
        settings.maxInstanceBytes,
      );
      this.sinks.set(request, sink);
      return sink;
    }

    override createDatasetFromStoreWritableStream(
      writable: Writable,
      context: PresentationContext,
      callback: (dataset: DatasetT) => void,
    ): void {
      // The data set stays on disk; dcmjs-dimse only needs a placeholder to carry on.
      const sink = writable as unknown as StoreSink;
      void sink.done().then(() => callback(new Dataset({}, context.getAcceptedTransferSyntaxUid())));
    }

    /**
     * The C-STORE-RSP is written by the node (dimse/pdata.ts), once the instance is durable and
     * indexed; dcmjs-dimse's callback is left uncalled (it would only write the same response
     * through its own command set writer, about 2 ms each).
     */
    override cStoreRequest(request: CStoreRequest, _callback: (response: CStoreResponseT) => void): void {
      const sink = this.sinks.get(request);
      this.sinks.delete(request);
      const context = this.association?.getAcceptedPresentationContextFromRequest(request);
      // Ingesting (parse, storage, index) is the node's work: the caller waiting for it is not idle.
      this.busy++;
      const span = this.operationSpan('C-STORE');
      void withSpan(span, () => this.store(request, sink))
        .then(({ status, comment }) => {
          endOperationSpan(span, status);
          this.busy--;
          this.touch();
          if (!context || this.conn.destroyed) return;
          const command = responseCommandSet({
            affectedSopClassUid: uidText(request.getAffectedSopClassUid()),
            commandField: C_STORE_RSP,
            messageIdBeingRespondedTo: request.getMessageId(),
            status,
            hasDataset: false,
            affectedSopInstanceUid: uidText(request.getAffectedSopInstanceUid()),
            errorComment: comment ? errorComment(comment) : undefined,
          });
          countDimse('C-STORE', status);
          writeMessage(this.conn, context.getPresentationContextId(), this.association!.getMaxPduLength(), command);
        })
        .catch((err: unknown) => {
          // A response that cannot be written leaves the peer waiting: the association is cut instead.
          log.error({ err: errorMessage(err), peer: this.peer }, 'C-STORE response not written; association aborted');
          this.conn.destroy();
        });
    }

    private async store(request: CStoreRequest, sink: StoreSink | undefined): Promise<{ status: number; comment?: string }> {
      const sop = request.getAffectedSopInstanceUid();
      try {
        if (!sink) throw new RadiantError('out-of-resources', 'data set was not received');
        if (sink.error) throw new RadiantError(sink.error.kind, sink.error.message);
        const result = await ingestor.ingestFile(
          sink.path,
          true,
          {
            source: 'dimse',
            callingAeTitle: this.association?.getCallingAeTitle().trim(),
            expected: { sopClassUid: request.getAffectedSopClassUid(), sopInstanceUid: sop },
          },
          sink.sha256(),
        );
        this.stored++;
        this.bytes += result.sizeBytes;
        if (this.studies.size < MAX_LISTED) this.studies.add(result.studyInstanceUid);
        if (this.patients.size < MAX_LISTED) this.patients.add(result.patientId);
        return { status: DimseStatus.Success };
      } catch (err) {
        this.failed++;
        if (sink) await ingestor.discardTemp(sink.path);
        const status = dimseStatusOf('store', err);
        const message = errorMessage(err);
        log.warn({ sop, status: `0x${status.toString(16).padStart(4, '0')}`, reason: message, peer: this.peer }, 'C-STORE refused');
        return { status, comment: message };
      }
    }

    /** A span for one DIMSE operation, under the association's. */
    private operationSpan(operation: string): Span {
      return startSpan(`DIMSE ${operation}`, { 'dicom.dimse.operation': operation }, { kind: SpanKind.SERVER, parent: this.span });
    }

    /**
     * The association is over (released, aborted either way, timed out, or its connection lost):
     * services see it closed, its slot is freed and it is summed up, once, whichever comes first.
     */
    private endAssociation(endedBy: AssociationEnd): void {
      this.markClosed();
      const slot = this.slot;
      if (!slot) return;
      this.slot = undefined;
      clearTimeout(this.idleTimer);
      slot.release();
      this.span?.setAttributes({ 'radiant.association.end': endedBy, 'radiant.association.stored': this.stored });
      this.span?.end();
      deps.onAssociationEnd({
        callingAeTitle: this.association?.getCallingAeTitle().trim() ?? '',
        calledAeTitle: this.association?.getCalledAeTitle().trim() ?? '',
        peer: this.peer,
        stored: this.stored,
        failed: this.failed,
        bytes: this.bytes,
        durationMs: Date.now() - this.startedAt,
        studies: [...this.studies],
        patients: [...this.patients],
        endedBy,
      });
    }
  };
}

/**
 * A command set's UI value as text. dcmjs-dimse hands a multi-valued one ("1.2.3\\1.2.4", which
 * a hostile peer may send and the store refuses with 0xA900) as an array; the response echoes it
 * as sent, values joined by the backslash delimiter.
 */
function uidText(v: string | string[] | undefined): string {
  return Array.isArray(v) ? v.join('\\') : (v ?? '');
}
