import fs from 'node:fs';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import dimse from 'dcmjs-dimse';
import type { Ingestor } from '../src/ingest/ingest.js';
import type { Logger } from '../src/logger.js';
import type { AuditLog } from '../src/audit/audit.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../src/dicom/implementation.js';
import { Admission } from './admission.js';
import { createScpClass, type AssociationSummary, type RefusedAssociation, type ScpSettings } from './scp.js';
import { NO_SERVICES, type ScpServices } from './services.js';

export interface DimseServerOptions extends ScpSettings {
  port: number;
  maxPdu: number;
  maxAssociations: number;
  /** Shares of maxAssociations one calling AE title / one peer address may hold. */
  maxAssociationsPerAe: number;
  maxAssociationsPerAddress: number;
  /** PEM files: the listener speaks TLS when cert and key are given (DICOM_TLS_*). */
  tls?: { cert?: string; key?: string; ca?: string };
}

/**
 * The node's DICOM listener (C-ECHO and C-STORE SCP, plus the ScpServices it is given). One instance per process; every
 * association gets its own Scp, and the server keeps count (Admission) so it can refuse past the limits.
 */
export class DimseServer {
  private server: InstanceType<typeof dimse.Server> | undefined;
  private readonly admission: Admission;
  /** Every open connection, destroyed at stop (dcmjs-dimse forgets those it ended itself). */
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly opts: DimseServerOptions,
    private readonly ingestor: Ingestor,
    private readonly log: Logger,
    private readonly audit?: AuditLog,
    private readonly services: ScpServices = NO_SERVICES,
  ) {
    this.admission = new Admission({
      maxAssociations: opts.maxAssociations,
      maxPerAe: opts.maxAssociationsPerAe,
      maxPerAddress: opts.maxAssociationsPerAddress,
    });
  }

  /** Start listening; resolves with the bound port (useful with port 0 in tests). */
  async start(): Promise<number> {
    dimse.Implementation.setImplementationClassUid(IMPLEMENTATION_CLASS_UID);
    dimse.Implementation.setImplementationVersion(IMPLEMENTATION_VERSION_NAME);
    dimse.Implementation.setMaxPduLength(this.opts.maxPdu);
    // dcmjs-dimse logs every PDU at info level; the node logs what matters itself.
    dimse.log.setLevel('silent');

    const ScpClass = createScpClass({
      settings: this.opts,
      ingestor: this.ingestor,
      log: this.log,
      services: this.services,
      connectionOpened: (socket) => {
        const closed = this.admission.connectionOpened(socket.remoteAddress ?? '?');
        if (!closed) return false;
        this.sockets.add(socket);
        return () => {
          this.sockets.delete(socket);
          closed();
        };
      },
      admit: (calling, address) => this.admission.admit(calling, address),
      onAssociationEnd: (s) => this.associationEnded(s),
      onRefused: (r) => this.refused(r),
    });
    const server = new dimse.Server(ScpClass);
    this.server = server;
    server.on('networkError', (e: Error) => this.log.debug({ err: e.message }, 'DICOM network error'));
    await new Promise<void>((resolve, reject) => {
      server.once('listening', () => resolve());
      server.once('networkError', (e: Error) => reject(e));
      const tls = this.opts.tls;
      const securityOptions =
        tls?.cert && tls.key
          ? {
              cert: fs.readFileSync(tls.cert),
              key: fs.readFileSync(tls.key),
              // With a CA, callers must present a certificate it signed (mutual TLS).
              ...(tls.ca ? { ca: fs.readFileSync(tls.ca), requestCert: true, rejectUnauthorized: true } : {}),
            }
          : undefined;
      // dcmjs-dimse's PDU timeout half-closes the socket; the node's idle timeout (scp.ts) takes
      // its place. Its association timeout never runs for accepted sockets (no 'connect' event).
      server.listen(this.opts.port, { pduTimeout: Infinity, ...(securityOptions ? { securityOptions } : {}) });
    });
    const port = (this.netServer()?.address() as AddressInfo | null)?.port ?? this.opts.port;
    this.log.info({ port, ae: this.opts.aeTitle, tls: Boolean(this.opts.tls?.cert && this.opts.tls.key) }, 'DICOM listener started');
    return port;
  }

  get activeAssociations(): number {
    return this.admission.activeAssociations;
  }

  private associationEnded(s: AssociationSummary): void {
    this.log.info(
      { calling: s.callingAeTitle, peer: s.peer, stored: s.stored, failed: s.failed, bytes: s.bytes, ms: s.durationMs, ended: s.endedBy },
      'association ended',
    );
    // One audit row per association, with counts, not one per instance.
    void this.audit?.record({
      actorType: 'ae',
      actor: s.callingAeTitle,
      peer: s.peer,
      action: 'dimse.association',
      resourceType: 'study',
      studyInstanceUid: s.studies.length === 1 ? s.studies[0] : undefined,
      patientId: s.patients.length === 1 ? s.patients[0] : undefined,
      outcome: (s.failed > 0 && s.stored === 0) || s.endedBy === 'idle-timeout' ? 'failure' : 'success',
      details: {
        calledAeTitle: s.calledAeTitle,
        stored: s.stored,
        failed: s.failed,
        bytes: s.bytes,
        ms: s.durationMs,
        endedBy: s.endedBy,
        studies: s.studies,
        patients: s.patients,
      },
    });
  }

  private refused(r: RefusedAssociation): void {
    // Rejections are audited too (PS3.15 A.5.3.1: who tried, and why not); identifiers only.
    void this.audit?.record({
      actorType: r.callingAeTitle === undefined ? 'anonymous' : 'ae',
      actor: r.callingAeTitle,
      peer: r.peer,
      action: 'dimse.association-rejected',
      outcome: 'failure',
      details: { reason: r.reason, ...(r.calledAeTitle === undefined ? {} : { calledAeTitle: r.calledAeTitle }) },
    });
  }

  async stop(): Promise<void> {
    const net = this.netServer();
    const closed = net?.listening ? new Promise<void>((resolve) => net.once('close', () => resolve())) : undefined;
    // Closes the listener and destroys the sockets dcmjs-dimse still lists, then the rest.
    this.server?.close();
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.server = undefined;
  }

  private netServer(): NetServer | undefined {
    // dcmjs-dimse keeps the net.Server on a field it does not declare.
    return (this.server as unknown as { server?: NetServer } | undefined)?.server;
  }
}
