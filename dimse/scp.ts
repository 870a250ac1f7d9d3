import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import type { Ingestor } from '../src/ingest/ingest.js';
import { RadiantError, errorMessage, DimseStatus } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { decideContext } from './negotiation.js';
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
  NActionRequest,
  NActionResponse,
  ScpServices,
} from './services.js';

const { Scp, Dataset } = dimse;
const { CEchoResponse, CStoreResponse, CFindResponse: CFindResponseC, CMoveResponse: CMoveResponseC, CGetResponse: CGetResponseC, NActionResponse: NActionResponseC } =
  dimse.responses;
const { PresentationContextResult, RejectResult, RejectSource, RejectReason } = dimse.constants;

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
}

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
}

export interface ScpDeps {
  settings: ScpSettings;
  ingestor: Ingestor;
  log: Logger;
  services: ScpServices;
  /** Admission control shared by all associations; false means "too many, reject". */
  admit(): boolean;
  release(): void;
  onAssociationEnd(summary: AssociationSummary): void;
}

/** ErrorComment is LO: 64 characters at most (PS3.7 C.4). */
function errorComment(message: string): string {
  const ascii = message.replace(/[^\x20-\x7e]/g, '?');
  return ascii.length > 64 ? `${ascii.slice(0, 61)}...` : ascii;
}

/** Pending (0xFF00, 0xFF01): more responses follow (PS3.7 C.4). */
function isPending(status: number): boolean {
  return status === 0xff00 || status === 0xff01;
}

/** A service the node does not provide on this association: refused, never silently empty. */
function refusal<R extends { setStatus(s: number): void }>(response: R): R {
  response.setStatus(DimseStatus.SopClassNotSupported);
  return response;
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
    private admitted = false;
    private readonly startedAt = Date.now();
    private readonly peer: string;
    private readonly conn: Socket;
    private readonly sinks = new WeakMap<CStoreRequest, StoreSink>();
    private stored = 0;
    private failed = 0;
    private bytes = 0;
    private readonly studies = new Set<string>();
    private context: AssociationContext | undefined;
    private markClosed: () => void = () => undefined;
    private readonly closed = new Promise<void>((resolve) => {
      this.markClosed = resolve;
    });

    constructor(socket: Socket, opts?: ConstructorParameters<typeof Scp>[1]) {
      super(socket, opts);
      // Each C-STORE response is a small write the SCU waits for; Nagle would hold it back.
      socket.setNoDelay(true);
      this.conn = socket;
      this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
      socket.once('close', () => this.finished());
    }

    override associationRequested(association: Association): void {
      this.association = association;
      const called = association.getCalledAeTitle().trim();
      const calling = association.getCallingAeTitle().trim();
      if (settings.checkCalledAe && called !== settings.aeTitle) {
        log.warn({ calling, called, peer: this.peer }, 'association rejected: called AE title not recognised');
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized);
        return;
      }
      if (services.admitCaller) {
        const address = this.conn.remoteAddress ?? '';
        void services.admitCaller(calling, address).then(
          (ok) => {
            if (ok) return this.admitAndAccept(association, calling);
            log.warn({ calling, peer: this.peer }, 'association rejected: calling AE title not allowed');
            this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized);
          },
          (err: unknown) => {
            log.error({ err: errorMessage(err), calling, peer: this.peer }, 'association rejected: allowlist lookup failed');
            this.sendAssociationReject(RejectResult.Transient, RejectSource.ServiceUser, RejectReason.NoReasonGiven);
          },
        );
        return;
      }
      this.admitAndAccept(association, calling);
    }

    private admitAndAccept(association: Association, calling: string): void {
      if (!deps.admit()) {
        log.warn({ calling, peer: this.peer }, 'association rejected: too many associations');
        // PS3.8 9.3.4: local limit exceeded is a transient rejection by the presentation layer.
        this.sendAssociationReject(RejectResult.Transient, 3, RejectReason.LocalLimitExceeded);
        return;
      }
      this.admitted = true;
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
        calledAeTitle: association.getCalledAeTitle().trim(),
        peer: this.peer,
        peerAddress: this.conn.remoteAddress ?? '',
        association,
        scp: this,
        closed: this.closed,
      };
      this.sendAssociationAccept();
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
      // then goes on a new association): services see the association as over from here.
      this.markClosed();
      this.sendAssociationReleaseResponse();
    }

    override abort(): void {
      log.info({ peer: this.peer }, 'association aborted by peer');
      // PS3.8 7.3.3: after an A-ABORT the transport connection is closed; DCMTK peers wait for it.
      this.conn.destroy();
    }

    override cEchoRequest(request: CEchoRequest, callback: (response: CEchoResponseT) => void): void {
      const response = CEchoResponse.fromRequest(request);
      response.setStatus(DimseStatus.Success);
      callback(response);
    }

    override cFindRequest(request: CFindRequest, callback: (responses: CFindResponse[]) => void): void {
      if (!services.find || !this.context) return callback([refusal(CFindResponseC.fromRequest(request))]);
      services.find(this.context, request, this.respondVia(request, callback));
    }

    override cMoveRequest(request: CMoveRequest, callback: (responses: CMoveResponse[]) => void): void {
      if (!services.move || !this.context) return callback([refusal(CMoveResponseC.fromRequest(request))]);
      services.move(this.context, request, this.respondVia(request, callback));
    }

    override cGetRequest(request: CGetRequest, callback: (responses: CGetResponse[]) => void): void {
      if (!services.get || !this.context) return callback([refusal(CGetResponseC.fromRequest(request))]);
      services.get(this.context, request, this.respondVia(request, callback));
    }

    /**
     * dcmjs-dimse's request callback is an async-eventemitter continuation: it may be called
     * once only (a second call throws "Callback was already called"). Pending responses are
     * therefore sent with sendResponse as they come, and the final one through the callback.
     */
    private respondVia<R extends CFindResponse | CMoveResponse | CGetResponse>(
      request: CFindRequest | CMoveRequest | CGetRequest,
      callback: (responses: R[]) => void,
    ): (r: R | R[]) => void {
      let finished = false;
      return (r) => {
        for (const response of Array.isArray(r) ? r : [r]) {
          if (finished) return;
          const status = response.getStatus();
          if (isPending(status)) {
            this.sendResponse(request, response);
            // dcmjs-dimse aborts an association that received no PDU for pduTimeout, even while
            // the node itself is busy answering it (a long C-MOVE): progress counts as activity.
            (this as unknown as { lastPduTime?: number }).lastPduTime = Date.now();
          } else {
            finished = true;
            callback([response]);
          }
        }
      };
    }

    override nActionRequest(request: NActionRequest, callback: (response: NActionResponse) => void): void {
      if (!services.nAction || !this.context) return callback(refusal(NActionResponseC.fromRequest(request)));
      services.nAction(this.context, request, (r) => (Array.isArray(r) ? r : [r]).forEach((x) => callback(x)));
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

    override cStoreRequest(request: CStoreRequest, callback: (response: CStoreResponseT) => void): void {
      const response = CStoreResponse.fromRequest(request);
      const sink = this.sinks.get(request);
      this.sinks.delete(request);
      void this.store(request, sink).then(({ status, comment }) => {
        response.setStatus(status);
        if (comment) response.setErrorComment(errorComment(comment));
        callback(response);
      });
    }

    private async store(
      request: CStoreRequest,
      sink: StoreSink | undefined,
    ): Promise<{ status: number; comment?: string }> {
      const sop = request.getAffectedSopInstanceUid();
      try {
        if (!sink) throw new RadiantError('out-of-resources', 'data set was not received');
        if (sink.error) throw new RadiantError(sink.error.kind, sink.error.message);
        const result = await ingestor.ingestFile(sink.path, true, {
          source: 'dimse',
          callingAeTitle: this.association?.getCallingAeTitle().trim(),
          expected: { sopClassUid: request.getAffectedSopClassUid(), sopInstanceUid: sop },
        });
        this.stored++;
        this.bytes += result.sizeBytes;
        if (this.studies.size < 20) this.studies.add(result.studyInstanceUid);
        return { status: DimseStatus.Success };
      } catch (err) {
        this.failed++;
        if (sink) await ingestor.discardTemp(sink.path);
        const status = err instanceof RadiantError ? err.dimseStatus : DimseStatus.OutOfResources;
        const message = errorMessage(err);
        log.warn({ sop, status: `0x${status.toString(16).padStart(4, '0')}`, reason: message, peer: this.peer }, 'C-STORE refused');
        return { status, comment: message };
      }
    }

    private finished(): void {
      this.markClosed();
      if (!this.admitted) return;
      this.admitted = false;
      deps.release();
      deps.onAssociationEnd({
        callingAeTitle: this.association?.getCallingAeTitle().trim() ?? '',
        calledAeTitle: this.association?.getCalledAeTitle().trim() ?? '',
        peer: this.peer,
        stored: this.stored,
        failed: this.failed,
        bytes: this.bytes,
        durationMs: Date.now() - this.startedAt,
        studies: [...this.studies],
      });
    }
  };
}
