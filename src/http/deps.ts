import type { AuditLog } from '../audit/audit.js';
import type { Config } from '../config.js';
import type { Db } from '../db/connection.js';
import type { EventBus } from '../events.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Transcoder } from '../dicom/transcoder.js';
import type { Renderer } from '../dicom/render/renderer.js';
import type { Forwarder } from '../forwarding/forwarder.js';
import type { EngineHost } from '../medgemma/engine-host.js';
import type { AnalysisRequester } from '../analysis/requests.js';
import type { RuleCache } from '../forwarding/rules.js';
import type { Ingestor } from '../ingest/ingest.js';
import type { Logger } from '../logger.js';
import type { BlobStorage } from '../../storage/types.js';
import type { Metrics } from './metrics.js';
import type { Security } from './security.js';

/*
 * What the HTTP face's routes are given, in a leaf module: route modules (here and in dicomweb/)
 * import this, not server.ts, which imports them (an import circle otherwise).
 */

/** Everything a route may need; routes take the parts they use. */
export interface HttpDeps {
  config: Config;
  log: Logger;
  db: Db;
  /** The index for searches (QIDO-RS), beside ingest's writer on SQLite; `db` when absent. */
  readDb?: Db;
  storage: BlobStorage;
  ingestor: Ingestor;
  audit: AuditLog;
  transcoder: Transcoder;
  /** The node's render pipeline (src/dicom/render/renderer.ts), shared with analysis and reports. */
  renderer: Renderer;
  forwardingRules: RuleCache;
  forwarder: Forwarder;
  engine: EngineHost;
  /** Records analyses and queues their jobs (src/analysis/requests.ts). */
  analysis: AnalysisRequester;
  /** The durable job queue (report.publish jobs are queued and awaited through it). */
  queue: JobQueue;
  events: EventBus;
  secretKey: string;
}

/** What each route module receives: the shared deps plus the security guard and metrics. */
export interface RouteDeps extends HttpDeps {
  security: Security;
  metrics: Metrics;
}
