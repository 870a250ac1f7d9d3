import fs from 'node:fs';
import type { AddressInfo, Server as NetServer } from 'node:net';
import dimse from 'dcmjs-dimse';
import type { Ingestor } from '../src/ingest/ingest.js';
import type { Logger } from '../src/logger.js';
import type { AuditLog } from '../src/audit/audit.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../src/dicom/implementation.js';
import { createScpClass, type ScpSettings } from './scp.js';
import { NO_SERVICES, type ScpServices } from './services.js';

export interface DimseServerOptions extends ScpSettings {
  port: number;
  maxPdu: number;
  maxAssociations: number;
  /** PEM files: the listener speaks TLS when cert and key are given (DICOM_TLS_*). */
  tls?: { cert?: string; key?: string; ca?: string };
}

/**
 * The node's DICOM listener (C-ECHO and C-STORE SCP, plus the ScpServices it is given). One instance per process; every
 * association gets its own Scp, and the server keeps count so it can refuse past the limit.
 */
export class DimseServer {
  private server: InstanceType<typeof dimse.Server> | undefined;
  private active = 0;

  constructor(
    private readonly opts: DimseServerOptions,
    private readonly ingestor: Ingestor,
    private readonly log: Logger,
    private readonly audit?: AuditLog,
    private readonly services: ScpServices = NO_SERVICES,
  ) {}

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
      admit: () => {
        if (this.active >= this.opts.maxAssociations) return false;
        this.active++;
        return true;
      },
      release: () => {
        this.active--;
      },
      onAssociationEnd: (s) => {
        this.log.info(
          { calling: s.callingAeTitle, peer: s.peer, stored: s.stored, failed: s.failed, bytes: s.bytes, ms: s.durationMs },
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
          outcome: s.failed > 0 && s.stored === 0 ? 'failure' : 'success',
          details: { calledAeTitle: s.calledAeTitle, stored: s.stored, failed: s.failed, bytes: s.bytes, ms: s.durationMs, studies: s.studies },
        });
      },
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
      server.listen(this.opts.port, { associationTimeout: 30_000, pduTimeout: 60_000, ...(securityOptions ? { securityOptions } : {}) });
    });
    const port = (this.netServer()?.address() as AddressInfo | null)?.port ?? this.opts.port;
    this.log.info({ port, ae: this.opts.aeTitle, tls: Boolean(this.opts.tls?.cert && this.opts.tls.key) }, 'DICOM listener started');
    return port;
  }

  get activeAssociations(): number {
    return this.active;
  }

  async stop(): Promise<void> {
    const net = this.netServer();
    const closed = net?.listening ? new Promise<void>((resolve) => net.once('close', () => resolve())) : undefined;
    // Closes the listener and destroys open associations' sockets.
    this.server?.close();
    await closed;
    this.server = undefined;
  }

  private netServer(): NetServer | undefined {
    // dcmjs-dimse keeps the net.Server on a field it does not declare.
    return (this.server as unknown as { server?: NetServer } | undefined)?.server;
  }
}
