import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import type { Ingestor } from '../src/ingest/ingest.js';
import { RadiantError, errorMessage, DimseStatus } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { decideContext } from './negotiation.js';
import { StoreSink } from './store-sink.js';

const { Scp, Dataset } = dimse;
const { CEchoResponse, CStoreResponse } = dimse.responses;
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

/**
 * dcmjs-dimse creates one Scp per TCP connection from a class, so the node's dependencies are
 * closed over here rather than passed through its options bag.
 */
export function createScpClass(deps: ScpDeps): typeof Scp {
  const { settings, ingestor, log } = deps;

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
      if (!deps.admit()) {
        log.warn({ calling, peer: this.peer }, 'association rejected: too many associations');
        // PS3.8 9.3.4: local limit exceeded is a transient rejection by the presentation layer.
        this.sendAssociationReject(RejectResult.Transient, 3, RejectReason.LocalLimitExceeded);
        return;
      }
      this.admitted = true;
      for (const { id } of association.getPresentationContexts()) {
        const context = association.getPresentationContext(id);
        const decision = decideContext(context.getAbstractSyntaxUid(), context.getTransferSyntaxUids(), settings);
        if (decision.accept) context.setResult(PresentationContextResult.Accept, decision.transferSyntaxUid);
        else if (decision.reason === 'abstract-syntax-not-supported')
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
        else context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      }
      log.debug({ calling, peer: this.peer }, 'association accepted');
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
