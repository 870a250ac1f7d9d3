import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config.js';
import { createDb, createReadDb, migrateLatest, type Db } from './db/connection.js';
import { EventsRelay } from './db/events-relay.js';
import { SessionLock } from './db/session-lock.js';
import { createStorage, LocalStorage } from '../storage/index.js';
import type { BlobStorage } from '../storage/types.js';
import { ParsePool } from './dicom/parse-pool.js';
import { Transcoder } from './dicom/transcoder.js';
import { Renderer } from './dicom/render/renderer.js';
import { Forwarder, forwardJobHandlers } from './forwarding/forwarder.js';
import { RuleCache } from './forwarding/rules.js';
import { cStoreSender } from '../dimse/cstore-sender.js';
import { scuDeps } from '../dimse/store-scu.js';
import { EngineHost } from './medgemma/engine-host.js';
import { AutoAnalyzer, STUDY_STABLE_JOB, studyStableHook } from './analysis/auto-analyze.js';
import type { AnalysisRequester } from './analysis/requests.js';
import { jobHandlers } from './jobs/handlers.js';
import { hl7JobHandlers } from './integrations/hl7-send.js';
import { OrderListener } from './integrations/hl7/order-listener.js';
import { jobQueue, startJobWorker, startServiceWorker } from './jobs/start.js';
import type { JobQueue } from './jobs/queue.js';
import { JobWorker, type JobHandlers } from './jobs/worker.js';
import { autoPublishConfig, reportJobHandlers } from './reports/auto-publish.js';
import { workflowDeps } from './reports/workflow.js';
import { fhirPushHandlers } from './fhir/push.js';
import { EventBus } from './events.js';
import { autoWorkitemHook, UpsPerformer } from './ups/performer.js';
import { retentionJobHandlers, scheduleRetention } from './retention/retention.js';
import { Worklist } from './ups/workitems.js';
import { MetadataPrebuilder } from '../dicomweb/metadata-prebuild.js';
import { Ingestor } from './ingest/ingest.js';
import { IngestJournal, journalDirFor } from './ingest/ingest-journal.js';
import { sweepOrphanBlobs } from './ingest/orphan-sweep.js';
import { DimseServer } from '../dimse/server.js';
import { nodeServices } from '../dimse/node-services.js';
import type { Logger } from './logger.js';
import { errorMessage } from './errors.js';
import { AuditLog } from './audit/audit.js';
import { AuditShipper } from './audit/audit-shipper.js';
import { parseSyslogUrl, SyslogSender } from './audit/syslog.js';
import { privatePaths, tightenModes } from './private-files.js';
import { resolveSecretKey } from './auth/secret.js';
import { createHttpApp, type HttpApp } from './http/server.js';
import { startTraceExport } from './observability/otlp.js';
import { startWorkerHttp, type WorkerHttp } from './http/worker-http.js';

/**
 * The node's parts, wired once. `openCore` is what every command needs (index, storage, the one
 * ingest path); `startNode` adds the network listeners.
 */
export interface Core {
  config: Config;
  log: Logger;
  db: Db;
  /** The index for searches (QIDO-RS, C-FIND): its own connections on SQLite, `db` itself on PostgreSQL. */
  readDb: Db;
  audit: AuditLog;
  storage: BlobStorage;
  parser: ParsePool;
  ingestor: Ingestor;
  transcoder: Transcoder;
  /**
   * The node's one render pipeline (worker pool, started lazily): /rendered, thumbnails,
   * WADO-URI, analysis images and PDF key images all decode through it.
   */
  renderer: Renderer;
  forwardingRules: RuleCache;
  forwarder: Forwarder;
  /** The in-process event bus: announcements and job wake-ups (src/events.ts). */
  events: EventBus;
  /** The durable job queue (src/jobs/queue.ts). */
  queue: JobQueue;
  close(): Promise<void>;
}

export interface RunningNode extends Core {
  dimse: DimseServer;
  /** The MedGemma engine, started in the background after the listeners. */
  engine: EngineHost;
  /** This process's job worker (JOB_WORKER_IN_SERVE), if any. */
  jobs: JobWorker | undefined;
  /**
   * This process's worker for the node's own background kinds (forward.send, metadata.prebuild),
   * beside `jobs` so a long analysis never holds up a forward; undefined when it has none.
   */
  serviceJobs: JobWorker | undefined;
  analysis: AnalysisRequester;
  autoAnalyzer: AutoAnalyzer;
  dicomPort: number;
  http: HttpApp;
  httpPort: number;
  /** The HL7 MLLP listener's port (HL7_LISTEN_PORT); undefined when it is off. */
  hl7Port: number | undefined;
  stop(): Promise<void>;
}

export interface OpenCoreOptions {
  /**
   * Remove local storage's half-written temp files (default true). A helper process beside a
   * running `radiant serve` (`radiant worker`) must not: those files are serve's uploads in flight.
   */
  cleanStorageTemp?: boolean;
}

export async function openCore(config: Config, log: Logger, opts: OpenCoreOptions = {}): Promise<Core> {
  const db = createDb(config.database);
  try {
    const applied = await migrateLatest(db);
    if (applied.length) log.info({ migrations: applied }, 'database migrated');
  } catch (err) {
    await db.destroy();
    throw new Error(`database ${config.database.client} not usable: ${errorMessage(err)}`, { cause: err });
  }
  const readDb = createReadDb(config.database, db);
  const destroyDb = async () => {
    if (readDb !== db) await readDb.destroy();
    await db.destroy();
  };
  const storage = await createStorage(config.storage);
  try {
    await storage.check();
  } catch (err) {
    await destroyDb();
    throw new Error(`storage ${config.storage.type} not usable: ${errorMessage(err)}`, { cause: err });
  }
  // Leftovers of a crash are never instances anyone was told were stored: an instance is
  // acknowledged only after its blob was renamed into place and indexed.
  await tightenModes(privatePaths(config), log);
  const journal = new IngestJournal(journalDirFor(config.tempDir));
  const audit = new AuditLog(db, log, { readDb, maxLagMs: config.auditMaxLagMs });
  // Before anything new is stored: blobs a killed process stored but never indexed.
  if (opts.cleanStorageTemp !== false) await sweepOrphanBlobs({ journal, db, storage, log, audit });
  await fsp.rm(config.tempDir, { recursive: true, force: true });
  await fsp.mkdir(config.tempDir, { recursive: true });
  if (storage instanceof LocalStorage && opts.cleanStorageTemp !== false) await storage.cleanTempFiles();
  const parser = new ParsePool({ workers: config.parse.workers, timeoutMs: config.parse.timeoutMs });
  const ingestor = new Ingestor(
    db,
    storage,
    parser,
    {
      tempDir: config.tempDir,
      duplicatePolicy: config.duplicatePolicy,
      maxInstanceBytes: config.maxInstanceBytes,
      acceptUnknownSopClasses: config.dicom.acceptUnknownSopClasses,
      journal,
      maxFramePixels: config.maxFramePixels,
    },
    log,
  );
  const transcoder = new Transcoder(config.transcode);
  const renderer = new Renderer({ ...config.render, maxFramePixels: config.maxFramePixels });
  const events = new EventBus();
  // PostgreSQL: what people watch (GET /api/events) hears the other processes of the database too.
  const relay = await EventsRelay.start(db, config.database, events, log);
  ingestor.on('instance-stored', (e) => {
    transcoder.invalidate(e.sopInstanceUid);
    const { studyInstanceUid, seriesInstanceUid, sopInstanceUid } = e;
    events.emit('instance-stored', { studyInstanceUid, seriesInstanceUid, sopInstanceUid });
  });
  const jobs = jobQueue({ db, config });
  const forwardingRules = new RuleCache(db);
  await forwardingRules.start((err) => log.warn({ err: errorMessage(err) }, 'forwarding rules reload failed'));
  const fw = config.forwarding;
  const forwarder = new Forwarder(
    {
      db,
      storage,
      log,
      audit,
      rules: forwardingRules,
      jobs,
      events,
      dimse: cStoreSender(scuDeps({ storage, transcoder, log, config })),
    },
    {
      batchSize: fw.batchSize,
      staleMs: 10 * 60_000,
      settleMs: fw.settleMs,
      retry: { maxAttempts: fw.maxAttempts, baseDelayMs: fw.retryBaseMs, maxDelayMs: 3_600_000 },
    },
  );
  ingestor.addIndexHook(forwarder.hook);
  // Every door counts as an arrival (a `radiant import` too): the study.stable job is scheduled
  // with the rows; the worker that runs analyses decides (AutoAnalyzer).
  if (config.analysis.autoAnalyze !== 'off') ingestor.addIndexHook(studyStableHook({ jobs, events }, config.analysis.stableSeconds));
  return {
    config,
    log,
    db,
    readDb,
    audit,
    storage,
    parser,
    ingestor,
    transcoder,
    renderer,
    forwardingRules,
    forwarder,
    events,
    queue: jobs,
    async close() {
      forwardingRules.stop();
      await relay?.stop();
      await transcoder.close();
      await renderer.close();
      await parser.close();
      await storage.close?.();
      // The queued audit rows of the last reads, before the database goes.
      await audit.flush();
      await destroyDb();
    },
  };
}

export async function startNode(config: Config, log: Logger): Promise<RunningNode> {
  const core = await openCore(config, log);
  if (config.auth.disabled) {
    log.warn('AUTH_DISABLED=true: every HTTP request is treated as an admin. Only for a closed lab network.');
  }
  const dimse = new DimseServer(
    {
      port: config.dicom.port,
      aeTitle: config.dicom.aeTitle,
      checkCalledAe: config.dicom.checkCalledAe,
      acceptUnknownSopClasses: config.dicom.acceptUnknownSopClasses,
      maxInstanceBytes: config.maxInstanceBytes,
      maxPdu: config.dicom.maxPdu,
      maxAssociations: config.dicom.maxAssociations,
      maxAssociationsPerAe: config.dicom.maxAssociationsPerAe,
      maxAssociationsPerAddress: config.dicom.maxAssociationsPerAddress,
      artimTimeoutMs: config.dicom.artimTimeoutMs,
      idleTimeoutMs: config.dicom.idleTimeoutMs,
      tls: config.dicom.tls,
    },
    core.ingestor,
    log,
    core.audit,
    nodeServices(core),
  );
  const engine = new EngineHost(config.medgemma, log);
  const queue = core.queue;
  let jobs: JobWorker | undefined;
  const analysis: AnalysisRequester = { db: core.db, queue, wake: () => jobs?.wake(), events: core.events };
  // UPS-RS: the node performs workitems with its code, and its automatic analyses are workitems too.
  const worklist = new Worklist({ db: core.db, queue, audit: core.audit, events: core.events });
  const autoAnalyzer = new AutoAnalyzer(analysis, config.analysis, log, core.events, autoWorkitemHook(worklist, log));
  const prebuilder = metadataPrebuilder(core);
  // Series metadata is built once a series has gone quiet, so OHIF's first request reads a cache.
  if (prebuilder) core.ingestor.addIndexHook(prebuilder.hook);
  const serviceHandlers = serviceJobHandlers(core, { analysis, worklist, prebuilder });
  let serviceJobs: JobWorker | undefined;
  // Analysis jobs wake their worker themselves (AnalysisRequester.wake); scheduled ones (study.stable) when due.
  core.events.on('job-due', ({ kind, runAt }) => (kind === STUDY_STABLE_JOB ? jobs : serviceJobs)?.wakeAt(runAt));
  const http = createHttpApp({ ...core, engine, analysis, secretKey: resolveSecretKey(config) });
  const shipper = auditShipper(core);
  try {
    await shipper?.start();
  } catch (err) {
    await core.close();
    throw new Error(`audit export not started: ${errorMessage(err)}`, { cause: err });
  }
  let dicomPort: number;
  let httpPort: number;
  try {
    dicomPort = await dimse.start();
  } catch (err) {
    await shipper?.stop();
    await core.close();
    throw new Error(`cannot listen on DICOM port ${config.dicom.port}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    httpPort = await http.listen(config.httpPort);
  } catch (err) {
    await dimse.stop();
    await shipper?.stop();
    await core.close();
    throw new Error(`cannot listen on HTTP port ${config.httpPort}: ${errorMessage(err)}`, { cause: err });
  }
  log.info({ port: httpPort }, 'HTTP listener started');
  let hl7: OrderListener | undefined;
  let hl7Port: number | undefined;
  if (config.hl7.listenPort !== undefined) {
    const node = { aeTitle: config.dicom.aeTitle, institutionName: config.institutionName };
    hl7 = new OrderListener({ db: core.db, audit: core.audit, log, node, allowedSenders: config.hl7.allowedSenders });
    try {
      hl7Port = await hl7.start(config.hl7.listenPort);
    } catch (err) {
      await http.close();
      await dimse.stop();
      await shipper?.stop();
      await core.close();
      throw new Error(`cannot listen on HL7 port ${config.hl7.listenPort}: ${errorMessage(err)}`, { cause: err });
    }
  }
  if (config.forwarding.enabled) {
    await core.forwarder
      .scheduleAll()
      .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'forward jobs not scheduled at start-up'));
  }
  // OTEL_EXPORTER_OTLP_ENDPOINT: spans of what the listeners and workers do from here on.
  const traceExport = await startTraceExport(config, log, 'serve');
  if (Object.keys(serviceHandlers).length > 0) serviceJobs = startServiceWorker(core, log, serviceHandlers);
  await scheduleRetention(core, config.retention).catch((err: unknown) =>
    log.warn({ err: errorMessage(err) }, 'retention job not scheduled at start-up'),
  );
  engine.start();
  if (config.jobs.inServe) jobs = startJobWorker(core, log, jobHandlers({ ...core, autoAnalyzer }, engine), [STUDY_STABLE_JOB]);
  await autoAnalyzer
    .scheduleRecent()
    .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'study.stable jobs of recent studies not scheduled at start-up'));
  return {
    ...core,
    engine,
    jobs,
    serviceJobs,
    analysis,
    autoAnalyzer,
    dimse,
    dicomPort,
    http,
    httpPort,
    hl7Port,
    async stop() {
      await hl7?.stop();
      await http.close();
      await dimse.stop();
      await serviceJobs?.stop();
      await jobs?.stop();
      await engine.close();
      // Rows not yet shipped stay behind the cursor: the next start sends them.
      await shipper?.stop();
      await core.close();
      await traceExport?.shutdown();
    },
  };
}

/** Series metadata prebuilds (METADATA_PREBUILD_MS), or undefined when off. */
function metadataPrebuilder(core: Core): MetadataPrebuilder | undefined {
  const ms = core.config.dicomweb.metadataPrebuildMs;
  if (ms <= 0) return undefined;
  return new MetadataPrebuilder({ db: core.db, storage: core.storage, log: core.log, jobs: core.queue, events: core.events }, ms);
}

/**
 * The light job kinds, which need only the core (index, storage, queue, bus): forwards, metadata
 * prebuilds, report publishing and automatic drafts, workitem steps, deliveries to the hospital's
 * systems, retention. Both `radiant serve` and `radiant worker` run them (their own lane), so a
 * cluster whose serve nodes run no jobs still publishes drafts and sends deliveries.
 */
function serviceJobHandlers(
  core: Core,
  parts: { analysis: AnalysisRequester; worklist: Worklist; prebuilder: MetadataPrebuilder | undefined },
): JobHandlers {
  const { config, log } = core;
  // UPS-RS: the node performs workitems with its code, and its automatic analyses are workitems too.
  const performer = new UpsPerformer({
    worklist: parts.worklist,
    analysis: parts.analysis,
    audit: core.audit,
    log,
    events: core.events,
    autoPublish: autoPublishConfig(config),
    aeTitle: config.dicom.aeTitle,
  });
  return {
    ...(config.forwarding.enabled ? forwardJobHandlers(core.forwarder) : {}),
    ...(parts.prebuilder ? parts.prebuilder.handlers() : {}),
    // Publishing a report version and drafting an automatic one: seconds of work the report
    // routes wait for, so never behind an analysis.
    ...reportJobHandlers(workflowDeps(core), autoPublishConfig(config)),
    // Performing a workitem is following its analysis: light steps, never behind one.
    ...performer.handlers(),
    // Deliveries to the hospital's systems (HL7 to a RIS, FHIR push; queued by report.publish): light, never behind an analysis.
    ...hl7JobHandlers({ ...workflowDeps(core), retry: { baseMs: config.hl7.retryBaseMs, maxMs: 30 * 60_000 } }),
    ...fhirPushHandlers({
      ...workflowDeps(core),
      backoff: { baseMs: config.fhirPush.retryBaseMs, maxMs: 3_600_000 },
    }),
    // RETENTION_RULES: a bounded run every RETENTION_INTERVAL_MINUTES, through the one delete path.
    ...retentionJobHandlers(core, config.retention),
  };
}

/** The ATNA export of the audit trail (AUDIT_SYSLOG_URL), or undefined when it is off. */
function auditShipper(core: Core): AuditShipper | undefined {
  const { url, caFile } = core.config.auditSyslog;
  if (!url) return undefined;
  const sender = new SyslogSender(parseSyslogUrl(url), { caFile });
  const source = { sourceId: core.config.dicom.aeTitle, siteId: core.config.institutionName };
  const name = `syslog ${url}`.slice(0, 64);
  // Serve nodes on one database ship each row once: whoever holds the lock of this destination.
  const lock = new SessionLock(core.config.database, `audit-export ${name}`, core.log);
  return new AuditShipper({ db: core.db, audit: core.audit, log: core.log, sender, source, lock }, { name });
}

/**
 * `radiant worker`: the node's index and storage, no DICOM/API listeners, until SIGINT or
 * SIGTERM: the analysis lane (with its own engine) and the light kinds' lane (as serve's), and
 * with WORKER_HTTP_PORT a small /metrics and /healthz listener. It may run beside `radiant serve`
 * on the same data, so it gets its own spool directory: openCore empties the one it is given,
 * and serve's is in use.
 */
export async function runWorkerProcess(config: Config, log: Logger): Promise<void> {
  const tempDir = path.join(path.dirname(config.tempDir), `worker-${process.pid}`);
  const core = await openCore({ ...config, tempDir }, log, { cleanStorageTemp: false });
  let httpListener: WorkerHttp | undefined;
  if (config.workerHttpPort !== undefined) {
    try {
      httpListener = await startWorkerHttp(core.db, log, config.workerHttpPort);
    } catch (err) {
      await core.close();
      throw new Error(`cannot listen on WORKER_HTTP_PORT ${config.workerHttpPort}: ${errorMessage(err)}`, { cause: err });
    }
  }
  const traceExport = await startTraceExport(config, log, 'worker');
  // A worker runs its own engine (its own llama-server, or the remote endpoint's client).
  const engine = new EngineHost(config.medgemma, log);
  engine.start();
  let worker: JobWorker | undefined;
  const analysis: AnalysisRequester = { db: core.db, queue: core.queue, wake: () => worker?.wake(), events: core.events };
  const worklist = new Worklist({ db: core.db, queue: core.queue, audit: core.audit, events: core.events });
  const autoAnalyzer = new AutoAnalyzer(analysis, config.analysis, log, core.events, autoWorkitemHook(worklist, log));
  const serviceHandlers = serviceJobHandlers(core, { analysis, worklist, prebuilder: metadataPrebuilder(core) });
  const serviceJobs = startServiceWorker(core, log, serviceHandlers);
  worker = startJobWorker(core, log, jobHandlers({ ...core, autoAnalyzer }, engine), [STUDY_STABLE_JOB]);
  // What this process queues (an automatic draft after its analysis) it runs at once, on the lane of its kind.
  core.events.on('job-due', ({ kind, runAt }) => (Object.hasOwn(serviceHandlers, kind) ? serviceJobs : worker)?.wakeAt(runAt));
  log.info({ pid: process.pid }, 'RadiantAI worker ready');
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info({ signal }, 'shutting down');
  try {
    await httpListener?.close();
    await serviceJobs.stop();
    await worker.stop();
    await engine.close();
  } finally {
    await core.close();
    await traceExport?.shutdown();
    await fsp.rm(tempDir, { recursive: true, force: true });
  }
}
