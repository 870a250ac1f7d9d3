import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import type { StorageOptions } from '../storage/index.js';
import { aeTitleSchema } from './dicom/ae-title.js';

/**
 * Configuration comes from environment variables only (twelve-factor), validated once at
 * start-up. A wrong value stops the node with one line naming the variable.
 */

const aeTitle = aeTitleSchema;

// 0 asks the OS for a free port (tests, side-by-side nodes).
const port = z.coerce.number().int().min(0).max(65535);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off']).transform((v) => ['true', '1', 'yes', 'on'].includes(v));

/** Every environment variable the node reads (the deployment files' test checks their names against it). */
export const envSchema = z.object({
  MODE: z.enum(['offline', 'online']).default('offline'),
  DATA_DIR: z.string().min(1).default('./data'),
  SQLITE_DATABASE_URL: z.string().min(1).optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  POSTGRES_HOST: z.string().min(1).optional(),
  POSTGRES_PORT: port.default(5432),
  POSTGRES_DB: z.string().min(1).default('radiant'),
  POSTGRES_USER: z.string().min(1).default('radiant'),
  POSTGRES_PASSWORD: z.string().default(''),
  DB_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  STORAGE_TYPE: z.enum(['local', 's3', 'azure']).optional(),
  LOCAL_STORAGE_PATH: z.string().min(1).optional(),
  S3_BUCKET: z.string().min(3).max(63).optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY: z.string().optional(),
  S3_SECRET_KEY: z.string().optional(),
  S3_ENDPOINT: z.url().optional(),
  /** Server-side encryption asked for on every put (x-amz-server-side-encryption); unset: the bucket's default. */
  S3_SSE: z.enum(['AES256', 'aws:kms']).optional(),
  /** The KMS key for S3_SSE=aws:kms (id, ARN or alias); unset: the account's aws/s3 key. */
  S3_SSE_KMS_KEY_ID: z.string().min(1).max(2048).optional(),
  AZURE_STORAGE_CONNECTION_STRING: z.string().min(1).optional(),
  AZURE_CONTAINER: z.string().min(3).max(63).optional(),
  /** Azure encryption scope named on every put (x-ms-encryption-scope); unset: the container's default. */
  AZURE_ENCRYPTION_SCOPE: z.string().min(3).max(63).optional(),
  TEMP_PATH: z.string().min(1).optional(),
  DICOM_AE_TITLE: aeTitle.default('RADIANT'),
  DICOM_PORT: port.default(11112),
  DICOM_CHECK_CALLED_AE: bool.default(true),
  // 16 KB, as DCMTK: dcmjs-dimse spends more CPU per byte on larger PDUs (measured: +30 %).
  DICOM_MAX_PDU: z.coerce.number().int().min(4096).max(4_194_304).default(16384),
  DICOM_MAX_ASSOCIATIONS: z.coerce.number().int().min(1).max(1000).default(32),
  /** Associations a C-MOVE opens to its destination at once (sub-operations taken from one queue). */
  DICOM_MOVE_ASSOCIATIONS: z.coerce.number().int().min(1).max(16).default(2),
  /** Share of DICOM_MAX_ASSOCIATIONS one calling AE title / one peer address may hold (one peer cannot lock out the rest). */
  DICOM_MAX_ASSOCIATIONS_PER_AE: z.coerce.number().int().min(1).max(1000).default(8),
  DICOM_MAX_ASSOCIATIONS_PER_ADDRESS: z.coerce.number().int().min(1).max(1000).default(16),
  /** PS3.8 ARTIM: a connection with no A-ASSOCIATE-RQ (or not closed after RJ/release) is destroyed after this. */
  DICOM_ARTIM_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  /** An established association with no traffic this long is aborted and its slot freed. */
  DICOM_IDLE_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  DICOM_ACCEPT_UNKNOWN_SOP_CLASSES: bool.default(false),
  /** Calling-AE allowlist: only DICOM_ALLOWED_AES and remote_nodes rows with allow_query_retrieve may associate (on when online). */
  DICOM_ALLOWLIST: bool.optional(),
  /** Comma-separated calling AE titles always allowed (setting it turns the allowlist on). */
  DICOM_ALLOWED_AES: z.string().default(''),
  /** PEM files: DIMSE over TLS (listener when CERT and KEY are set; SCU to nodes marked tls). */
  DICOM_TLS_CERT: z.string().min(1).optional(),
  DICOM_TLS_KEY: z.string().min(1).optional(),
  DICOM_TLS_CA: z.string().min(1).optional(),
  HTTP_PORT: port.default(8042),
  /** Comma-separated origins allowed to call the node from a browser, or '*'. */
  CORS_ORIGINS: z.string().default(''),
  MAX_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(2 * 1024 ** 3),
  /** A client must finish sending request headers within this (slowloris). */
  HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(60_000),
  /** A whole request (body included) within this; 4 h fits 2 GiB at about 1.2 Mbit/s. 0: no limit. */
  HTTP_REQUEST_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(4 * 3600 * 1000),
  /** An idle keep-alive connection is closed after this. */
  HTTP_KEEPALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  /** Open HTTP connections at most; more are closed on arrival. */
  HTTP_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(4096),
  /** Behind a reverse proxy: URLs the node writes follow Forwarded / X-Forwarded-Proto/Host/Prefix. */
  HTTP_TRUST_PROXY: bool.default(false),
  /** PEM files: the HTTP listener serves HTTPS when both are set. */
  HTTP_TLS_CERT: z.string().min(1).optional(),
  HTTP_TLS_KEY: z.string().min(1).optional(),
  /** Strict-Transport-Security max-age on HTTPS answers (direct, or a trusted proxy's https); 0: no header. */
  HTTP_HSTS_MAX_AGE_SECONDS: z.coerce.number().int().min(0).max(63_072_000).default(31_536_000),
  /** Token buckets on /api, /dicom-web and /wado: requests per RATE_LIMIT_WINDOW_SECONDS (the burst too); 0: no limit. */
  RATE_LIMIT_PER_USER: z.coerce.number().int().min(0).default(2000),
  RATE_LIMIT_PER_ADDRESS: z.coerce.number().int().min(0).default(4000),
  RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).max(3600).default(10),
  SECRET_KEY: z.string().min(1).optional(),
  TOKEN_EXPIRY_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .max(30 * 24 * 3600)
    .default(8 * 3600),
  AUTH_DISABLED: bool.default(false),
  /** Who may register the first admin over HTTP: anyone, holders of the bootstrap token, nobody (CLI only). */
  AUTH_BOOTSTRAP: z.enum(['open', 'token', 'off']).optional(),
  /** The bootstrap token; unset: a random one is logged at start while the node has no users. */
  AUTH_BOOTSTRAP_TOKEN: z.string().min(16).max(256).optional(),
  /** Failed logins allowed per (user, address), 4x per address, in LOGIN_WINDOW_SECONDS; then a lockout with backoff. */
  LOGIN_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(5),
  LOGIN_WINDOW_SECONDS: z.coerce.number().int().min(1).default(300),
  /** QIDO-RS: answer 400 to query keys the node does not know (off: OHIF sends extra ones). */
  QIDO_STRICT: bool.default(false),
  /** Build a series' WADO-RS metadata this long after its last instance arrived (0: on request only). */
  METADATA_PREBUILD_MS: z.coerce.number().int().min(0).default(2000),
  DUPLICATE_POLICY: z.enum(['overwrite', 'ignore', 'reject']).default('overwrite'),
  MAX_INSTANCE_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(4 * 1024 ** 3),
  PARSE_WORKERS: z.coerce.number().int().min(1).max(64).optional(),
  PARSE_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  TRANSCODE_WORKERS: z.coerce.number().int().min(1).max(64).optional(),
  TRANSCODE_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
  TRANSCODE_CACHE_MB: z.coerce.number().int().min(0).max(65_536).default(256),
  /** Ceiling on Rows × Columns of one frame, at ingest and before rendering (default 2^28). */
  MAX_FRAME_PIXELS: z.coerce
    .number()
    .int()
    .min(1)
    .max(2 ** 32)
    .default(2 ** 28),
  RENDER_WORKERS: z.coerce.number().int().min(1).max(64).default(2),
  RENDER_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  FORWARDING: z.enum(['on', 'off']).default('on'),
  FORWARD_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(200),
  FORWARD_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(1000).default(8),
  FORWARD_RETRY_BASE_MS: z.coerce.number().int().min(10).default(30_000),
  FORWARD_SETTLE_MS: z.coerce.number().int().min(0).default(2_000),
  FORWARD_POLL_MS: z.coerce.number().int().min(50).default(5_000),
  /** Job queue (src/jobs), for `radiant worker` and a worker inside `radiant serve`. */
  JOB_POLL_MS: z.coerce.number().int().min(10).default(1_000),
  JOB_HEARTBEAT_MS: z.coerce.number().int().min(10).default(5_000),
  JOB_STALE_MS: z.coerce.number().int().min(100).default(60_000),
  JOB_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  JOB_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(3),
  /** Finished jobs of the node's own trigger kinds (forward.send, metadata.prebuild, study.stable) are deleted after this; 0: kept. */
  JOB_RETENTION_HOURS: z.coerce.number().min(0).max(87_600).default(24),
  /** Retention (src/retention): a JSON array of rules (see retentionRule); unset: nothing is ever deleted by age. */
  RETENTION_RULES: z.string().max(65_536).optional(),
  /** How often the retention job runs on the job runner; 0: only `radiant retention` deletes. */
  RETENTION_INTERVAL_MINUTES: z.coerce.number().int().min(0).max(525_600).default(60),
  /** Studies deleted at most per run (the rest wait for the next run). */
  RETENTION_MAX_STUDIES_PER_RUN: z.coerce.number().int().min(1).max(100_000).default(200),
  /** off: `radiant serve` runs no jobs; dedicated `radiant worker` processes take them. */
  JOB_WORKER_IN_SERVE: z.enum(['on', 'off']).default('on'),
  /** HL7 v2 (src/integrations): attempts of each delivery to a RIS and the back-off between them (doubling, up to 30 min). */
  HL7_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
  HL7_RETRY_BASE_MS: z.coerce.number().int().min(10).default(30_000),
  /** The MLLP listener for orders (ORM^O01, OMI^O23); off when unset. */
  HL7_LISTEN_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** Comma-separated MSH-3 sending applications the listener accepts; empty: any. */
  HL7_ALLOWED_SENDERS: z.string().max(4096).optional(),
  /** MedGemma engine (src/medgemma): auto = remote when online with an endpoint, llama-server with a model path, else off. */
  MEDGEMMA_BACKEND: z.enum(['auto', 'llama-server', 'remote', 'node-llama-cpp', 'off']).default('auto'),
  MEDGEMMA_MODEL_PATH: z.string().min(1).optional(),
  MEDGEMMA_MMPROJ_PATH: z.string().min(1).optional(),
  MEDGEMMA_DEVICE: z.enum(['auto', 'cuda', 'cpu']).default('auto'),
  MEDGEMMA_CONTEXT: z.coerce.number().int().min(512).max(1_048_576).default(32768),
  MEDGEMMA_GPU_LAYERS: z.union([z.enum(['auto', 'all']), z.coerce.number().int().min(0).max(1000)]).default('auto'),
  MEDGEMMA_THREADS: z.coerce.number().int().min(1).max(512).optional(),
  LLAMA_NO_REPACK: z.enum(['auto', 'on', 'off']).default('auto'),
  MEDGEMMA_API_ENDPOINT: z.url().optional(),
  MEDGEMMA_API_KEY: z.string().min(1).optional(),
  MEDGEMMA_API_MODEL: z.string().min(1).default('medgemma'),
  MEDGEMMA_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  MEDGEMMA_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
  MEDGEMMA_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  MEDGEMMA_MAX_REQUEST_MB: z.coerce.number().min(1).max(4096).default(90),
  /** remote: plain http:// to a non-loopback host (the API key and the images would travel in clear). */
  MEDGEMMA_API_ALLOW_HTTP: bool.default(false),
  /** SHA-256 of model/mmproj files the admin trusts (comma-separated); with the built-in list it decides model.validated. */
  MEDGEMMA_TRUSTED_SHA256: z.string().optional(),
  /** Analyses of an unvalidated model may still be published or forwarded automatically. */
  MEDGEMMA_ALLOW_UNVALIDATED_MODEL: bool.default(false),
  /** Analysis pipeline (src/analysis). */
  AUTO_ANALYZE: z.enum(['off', 'all', 'rules']).default('off'),
  AUTO_ANALYZE_RULES: z.string().min(1).optional(),
  /** Automatic analyses that succeed are drafted and published by the node (default: with AUTO_ANALYZE). */
  AUTO_PUBLISH: bool.optional(),
  /** How long POST /api/reports, sign and amend wait for the report.publish job before answering 202. */
  REPORT_PUBLISH_WAIT_MS: z.coerce.number().int().min(0).max(600_000).default(60_000),
  STUDY_STABLE_SECONDS: z.coerce.number().min(0).max(86_400).default(15),
  MEDGEMMA_MAX_SLICES: z.coerce.number().int().min(1).max(1000).default(85),
  /** How the model is asked (src/medgemma/recipes.ts); auto: from the model's identity. */
  MEDGEMMA_RECIPE: z.enum(['auto', 'medgemma-1.5', 'medgemma-1', 'generic']).default('auto'),
  ANALYSIS_IMAGE_SIZE: z.coerce.number().int().min(64).max(4096).default(896),
  ANALYSIS_PRIOR_IMAGES: z.coerce.number().int().min(0).max(200).default(16),
  ANALYSIS_MAX_FINDINGS: z.coerce.number().int().min(1).max(100).default(12),
  ANALYSIS_MAX_TEXT: z.coerce.number().int().min(16).max(4000).default(400),
  ANALYSIS_MAX_TOKENS: z.coerce.number().int().min(64).max(65_536).default(4096),
  /** FHIR push (src/fhir/push.ts) to the 'fhir' integrations (/api/integrations): attempts and back-off of each push. */
  FHIR_PUSH_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(10),
  FHIR_PUSH_RETRY_BASE_MS: z.coerce.number().int().min(10).max(3_600_000).default(10_000),
  /** Named in report objects (InstitutionName, the signer's organization). */
  INSTITUTION_NAME: z.string().trim().min(1).max(64).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** ATNA: the audit trail sent as DICOM audit messages over syslog (udp://, tcp://, tls://host:port); off when unset. */
  AUDIT_SYSLOG_URL: z
    .string()
    .trim()
    .regex(/^(udp|tcp|tls):\/\/[^/]+$/, 'udp://host:port, tcp://host:port or tls://host:port')
    .optional(),
  /**
   * How long the audit row of a read (GET/HEAD) may stay uncommitted after its answer started
   * (src/audit/audit.ts): the most a crash can lose; 0 commits every row before its answer.
   */
  AUDIT_MAX_LAG_MS: z.coerce.number().int().min(0).max(60_000).default(2000),
  /** CA certificate (PEM file) the syslog collector's TLS certificate must chain to; default: the system's CAs. */
  AUDIT_SYSLOG_CA: z.string().trim().min(1).optional(),
  /** OpenTelemetry: the OTLP/HTTP collector spans are exported to (base URL; /v1/traces is added); off when unset. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  /** The traces URL itself (used as given), ahead of OTEL_EXPORTER_OTLP_ENDPOINT. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url().optional(),
  OTEL_SERVICE_NAME: z.string().trim().min(1).max(128).default('radiant'),
  /** `radiant worker`: a small HTTP listener with /metrics and /healthz; off when unset. */
  WORKER_HTTP_PORT: z.coerce.number().int().min(0).max(65535).optional(),
});

export type Env = z.infer<typeof envSchema>;

/** Marks "no key configured": replaced by a per-install key file in offline mode (src/auth). */
export const DEFAULT_SECRET = 'radiant-default-secret-change-me';

export type DatabaseOptions = { client: 'sqlite'; filename: string } | { client: 'pg'; connection: string | PgConnection; poolMax: number };

export interface PgConnection {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

export interface Config {
  mode: 'offline' | 'online';
  dataDir: string;
  tempDir: string;
  database: DatabaseOptions;
  storage: StorageOptions;
  dicom: {
    aeTitle: string;
    port: number;
    checkCalledAe: boolean;
    maxPdu: number;
    maxAssociations: number;
    moveAssociations: number;
    maxAssociationsPerAe: number;
    maxAssociationsPerAddress: number;
    artimTimeoutMs: number;
    idleTimeoutMs: number;
    acceptUnknownSopClasses: boolean;
    /** Calling-AE allowlist on (DICOM_ALLOWLIST; else on when DICOM_ALLOWED_AES is set or MODE=online). */
    allowlist: boolean;
    allowedAes: string[];
    tls: { cert?: string; key?: string; ca?: string };
  };
  httpPort: number;
  http: {
    corsOrigins: string[];
    maxUploadBytes: number;
    headersTimeoutMs: number;
    /** 0: none. */
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    maxConnections: number;
    /** Forwarded / X-Forwarded-* name the external address (src/http/external-url.ts). */
    trustProxy: boolean;
    /** HTTPS listener (PEM file paths), when both are set. */
    tls: { cert?: string; key?: string };
    /** 0: no Strict-Transport-Security header. */
    hstsMaxAgeSeconds: number;
    /** Requests per window by user and by client address (src/http/request-limits.ts); 0: off. */
    rateLimit: { perUser: number; perAddress: number; windowMs: number };
  };
  auth: {
    secretKey: string;
    secretKeyIsDefault: boolean;
    tokenExpirySeconds: number;
    disabled: boolean;
    /** First-admin registration over HTTP (offline default open, online default token). */
    bootstrap: 'open' | 'token' | 'off';
    bootstrapToken?: string;
    loginMaxAttempts: number;
    loginWindowSeconds: number;
  };
  dicomweb: { qidoStrict: boolean; metadataPrebuildMs: number };
  duplicatePolicy: 'overwrite' | 'ignore' | 'reject';
  maxInstanceBytes: number;
  parse: { workers: number; timeoutMs: number };
  transcode: { workers: number; timeoutMs: number; cacheBytes: number };
  maxFramePixels: number;
  render: { workers: number; timeoutMs: number };
  forwarding: { enabled: boolean; batchSize: number; maxAttempts: number; retryBaseMs: number; settleMs: number; pollMs: number };
  jobs: {
    pollMs: number;
    heartbeatMs: number;
    staleMs: number;
    concurrency: number;
    maxAttempts: number;
    inServe: boolean;
    retentionHours: number;
  };
  medgemma: MedgemmaConfig;
  analysis: AnalysisConfig;
  hl7: Hl7Config;
  retention: RetentionConfig;
  institutionName: string | null;
  /** FHIR_PUSH_*: how pushes to the 'fhir' integrations are retried. */
  fhirPush: FhirPushConfig;
  /** The audit export over syslog (src/audit/audit-shipper.ts); url undefined: off. */
  auditSyslog: { url?: string; caFile?: string };
  /** AUDIT_MAX_LAG_MS: the audit rows of reads are committed within this, or reads wait for them. */
  auditMaxLagMs: number;
  /** OTLP/HTTP trace export (src/observability/otlp.ts); tracesUrl undefined: no provider, spans are no-ops. */
  otel: { tracesUrl?: string; serviceName: string };
  /** `radiant worker`'s /metrics and /healthz listener; undefined: none. */
  workerHttpPort: number | undefined;
  logLevel: Env['LOG_LEVEL'];
}

export interface RetentionConfig {
  rules: RetentionRule[];
  /** 0: no periodic job. */
  intervalMs: number;
  maxStudiesPerRun: number;
}

export interface Hl7Config {
  maxAttempts: number;
  retryBaseMs: number;
  /** undefined: no listener. 0: any free port (tests). */
  listenPort: number | undefined;
  /** MSH-3 values the listener accepts; empty: any sender. */
  allowedSenders: string[];
}

export interface FhirPushConfig {
  maxAttempts: number;
  /** First retry delay, doubling up to an hour. */
  retryBaseMs: number;
}

export interface AnalysisConfig {
  autoAnalyze: 'off' | 'all' | 'rules';
  /** AUTO_PUBLISH: an automatic analysis that succeeds is drafted and published (src/reports/auto-publish.ts). */
  autoPublish: boolean;
  /** REPORT_PUBLISH_WAIT_MS: how long the report routes wait for publishing before answering 202. */
  publishWaitMs: number;
  /** AUTO_ANALYZE_RULES as given (JSON); checked at load (parseAutoRules), matched by src/analysis/auto-rules.ts. */
  autoRules?: string;
  stableSeconds: number;
  maxSlices: number;
  /** MEDGEMMA_RECIPE (src/medgemma/recipes.ts). */
  recipe: 'auto' | 'medgemma-1.5' | 'medgemma-1' | 'generic';
  imageSize: number;
  /** Comparison: images of the prior study added after the current ones (0: none). */
  priorImages: number;
  maxFindings: number;
  maxText: number;
  maxTokens: number;
}

export interface MedgemmaConfig {
  /** The backend in use after resolving `auto`. */
  backend: 'llama-server' | 'remote' | 'node-llama-cpp' | 'off';
  modelPath?: string;
  mmprojPath?: string;
  device: 'auto' | 'cuda' | 'cpu';
  contextSize: number;
  gpuLayers: number | 'auto' | 'all';
  threads?: number;
  /** LLAMA_NO_REPACK: llama-server's --no-repack (auto: on AMX CPUs; src/medgemma/no-repack.ts). */
  llamaNoRepack: 'auto' | 'on' | 'off';
  apiEndpoint?: string;
  apiKey?: string;
  apiModel: string;
  maxConcurrency: number;
  timeoutMs: number;
  maxRetries: number;
  /** remote: largest request body; images are sent as JPEG when PNG would not fit. */
  maxRequestBytes: number;
  /** remote: http:// allowed to a non-loopback host. */
  apiAllowHttp: boolean;
  /** MEDGEMMA_TRUSTED_SHA256, lowercase hex (src/medgemma/known-models.ts). */
  trustedSha256: string[];
  /** MEDGEMMA_ALLOW_UNVALIDATED_MODEL: auto-publish/forward analyses of an unvalidated model too. */
  allowUnvalidatedModel: boolean;
}

/** MEDGEMMA_TRUSTED_SHA256: comma-separated hex digests, lowercased; throws naming the first bad entry. */
function parseTrustedSha256(value: string | undefined): string[] {
  const list = (value ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const bad = list.find((s) => !/^[0-9a-f]{64}$/.test(s));
  if (bad !== undefined) throw new ConfigError(`MEDGEMMA_TRUSTED_SHA256: '${bad}' is not a SHA-256 (64 hexadecimal digits)`);
  return list;
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: traffic that never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1') return true;
  const v4 = h.replace(/^::ffff:/, '');
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** Why an endpoint URL may not carry an API key and patient images; undefined when it may. */
export function insecureEndpoint(url: string, allowHttp: boolean): string | undefined {
  const u = new URL(url);
  if (u.protocol === 'https:' || allowHttp) return undefined;
  if (u.protocol === 'http:' && isLoopbackHost(u.hostname)) return undefined;
  return `${u.protocol}// to ${u.hostname} would send the API key and the images unencrypted: use https://, a loopback host, or set MEDGEMMA_API_ALLOW_HTTP=true`;
}

function medgemmaConfig(e: Env, cwd: string): MedgemmaConfig {
  let backend: MedgemmaConfig['backend'];
  if (e.MEDGEMMA_BACKEND === 'auto') {
    if (e.MODE === 'online' && e.MEDGEMMA_API_ENDPOINT) backend = 'remote';
    else if (e.MEDGEMMA_MODEL_PATH) backend = 'llama-server';
    else backend = 'off';
  } else backend = e.MEDGEMMA_BACKEND;
  if (backend === 'remote') {
    const why = insecureEndpoint(
      required(e.MEDGEMMA_API_ENDPOINT, 'MEDGEMMA_API_ENDPOINT', 'when MEDGEMMA_BACKEND=remote'),
      e.MEDGEMMA_API_ALLOW_HTTP,
    );
    if (why) throw new ConfigError(`MEDGEMMA_API_ENDPOINT=${e.MEDGEMMA_API_ENDPOINT}: ${why}`);
  }
  const trustedSha256 = parseTrustedSha256(e.MEDGEMMA_TRUSTED_SHA256);
  if (backend === 'llama-server' || backend === 'node-llama-cpp')
    required(e.MEDGEMMA_MODEL_PATH, 'MEDGEMMA_MODEL_PATH', `when MEDGEMMA_BACKEND=${backend}`);
  return {
    backend,
    modelPath: e.MEDGEMMA_MODEL_PATH ? path.resolve(cwd, e.MEDGEMMA_MODEL_PATH) : undefined,
    mmprojPath: e.MEDGEMMA_MMPROJ_PATH ? path.resolve(cwd, e.MEDGEMMA_MMPROJ_PATH) : undefined,
    device: e.MEDGEMMA_DEVICE,
    contextSize: e.MEDGEMMA_CONTEXT,
    gpuLayers: e.MEDGEMMA_GPU_LAYERS,
    threads: e.MEDGEMMA_THREADS,
    llamaNoRepack: e.LLAMA_NO_REPACK,
    apiEndpoint: e.MEDGEMMA_API_ENDPOINT,
    apiKey: e.MEDGEMMA_API_KEY,
    apiModel: e.MEDGEMMA_API_MODEL,
    maxConcurrency: e.MEDGEMMA_MAX_CONCURRENCY,
    timeoutMs: e.MEDGEMMA_TIMEOUT_MS,
    maxRetries: e.MEDGEMMA_MAX_RETRIES,
    maxRequestBytes: Math.round(e.MEDGEMMA_MAX_REQUEST_MB * 1e6),
    apiAllowHttp: e.MEDGEMMA_API_ALLOW_HTTP,
    trustedSha256,
    allowUnvalidatedModel: e.MEDGEMMA_ALLOW_UNVALIDATED_MODEL,
  };
}

/** AUTO_ANALYZE_RULES: one rule's criteria (matched by src/analysis/auto-rules.ts). */
const autoRuleList = z.array(z.string().trim().min(1).max(64)).min(1).max(50);

export const autoRule = z
  .object({
    modalities: autoRuleList.optional(),
    bodyParts: autoRuleList.optional(),
    callingAeTitles: autoRuleList.optional(),
    studyDescription: z
      .string()
      .min(1)
      .max(200)
      .refine((s) => {
        try {
          new RegExp(s, 'i');
          return true;
        } catch {
          return false;
        }
      }, 'not a valid regular expression')
      .optional(),
    analysisType: z.enum(['primary', 'comparison']).default('primary'),
  })
  .strict();

export type AutoRule = z.infer<typeof autoRule>;

export class AutoRulesError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'AutoRulesError';
  }
}

export function parseAutoRules(json: string | undefined): AutoRule[] {
  if (!json) throw new AutoRulesError('AUTO_ANALYZE=rules needs AUTO_ANALYZE_RULES (a JSON array of rules)');
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new AutoRulesError(`AUTO_ANALYZE_RULES is not JSON: ${(err as Error).message}`);
  }
  const parsed = z.array(autoRule).min(1).max(100).safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new AutoRulesError(`AUTO_ANALYZE_RULES ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return parsed.data;
}

function checkedAutoAnalyze(e: Env): Env['AUTO_ANALYZE'] {
  if (e.AUTO_ANALYZE === 'rules') {
    try {
      parseAutoRules(e.AUTO_ANALYZE_RULES);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  }
  return e.AUTO_ANALYZE;
}

/**
 * RETENTION_RULES: one rule. A study matches when it is older than `olderThanDays` (by its Study
 * Date, or by when its last instance arrived), has a series of one of `modalities` (when given),
 * and every instance it received came through one of `doors` from one of `callingAeTitles` (when
 * given; the node's own AI objects do not count). Studies with an unsigned AI draft are kept
 * unless `deleteUnsignedDrafts` is true.
 */
export const retentionRule = z
  .object({
    name: z.string().trim().min(1).max(64),
    olderThanDays: z.number().int().min(1).max(36_500),
    /** study_date: the Study Date (0008,0020); a study without one never matches. received: the last arrival. */
    ageFrom: z.enum(['study_date', 'received']).default('received'),
    modalities: autoRuleList.optional(),
    doors: z
      .array(z.enum(['dimse', 'stow', 'upload', 'import']))
      .min(1)
      .max(4)
      .optional(),
    callingAeTitles: autoRuleList.optional(),
    deleteUnsignedDrafts: z.boolean().default(false),
  })
  .strict();

export type RetentionRule = z.infer<typeof retentionRule>;

export function parseRetentionRules(json: string | undefined): RetentionRule[] {
  if (!json) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new ConfigError(`RETENTION_RULES is not JSON: ${(err as Error).message}`);
  }
  const parsed = z.array(retentionRule).max(100).safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new ConfigError(`RETENTION_RULES ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  const names = parsed.data.map((r) => r.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ConfigError(`RETENTION_RULES: rule name ${JSON.stringify(dup)} is used twice`);
  return parsed.data;
}

/** `sqlite:///abs/path`, `sqlite://rel/path`, `file:path` or a plain path. */
function sqliteFilename(url: string, base: string): string {
  const stripped = url.replace(/^sqlite:(\/\/)?/, '').replace(/^file:(\/\/)?/, '');
  if (stripped === ':memory:') return stripped;
  return path.resolve(base, stripped);
}

function required<T>(value: T | undefined, name: string, why: string): T {
  if (value === undefined || value === '') throw new ConfigError(`${name} is required ${why}`);
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  // Empty strings are treated as unset: shells and compose files often export VAR= for "default".
  const cleaned = Object.fromEntries(Object.entries(env).filter(([k, v]) => k in envSchema.shape && v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    const raw = cleaned[name];
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: ${issue.message}`);
  }
  const e = parsed.data;
  const dataDir = path.resolve(cwd, e.DATA_DIR);

  let database: DatabaseOptions;
  if (e.DATABASE_URL) {
    database = { client: 'pg', connection: e.DATABASE_URL, poolMax: e.DB_POOL_MAX };
  } else if (e.POSTGRES_HOST) {
    database = {
      client: 'pg',
      connection: {
        host: e.POSTGRES_HOST,
        port: e.POSTGRES_PORT,
        database: e.POSTGRES_DB,
        user: e.POSTGRES_USER,
        password: e.POSTGRES_PASSWORD,
      },
      poolMax: e.DB_POOL_MAX,
    };
  } else if (e.MODE === 'online') {
    throw new ConfigError('DATABASE_URL (or POSTGRES_HOST) is required when MODE=online');
  } else {
    database = {
      client: 'sqlite',
      filename: sqliteFilename(e.SQLITE_DATABASE_URL ?? path.join(dataDir, 'radiant.sqlite'), cwd),
    };
  }

  const storageType = e.STORAGE_TYPE ?? (e.MODE === 'online' ? 's3' : 'local');
  // A KMS key with AES256 (or no SSE) would be silently ignored by S3: say so at start-up instead.
  if (e.S3_SSE_KMS_KEY_ID && e.S3_SSE !== 'aws:kms') throw new ConfigError('S3_SSE_KMS_KEY_ID needs S3_SSE=aws:kms');
  const localRoot = path.resolve(cwd, e.LOCAL_STORAGE_PATH ?? path.join(dataDir, 'storage'));
  let storage: StorageOptions;
  switch (storageType) {
    case 'local':
      storage = { type: 'local', root: localRoot };
      break;
    case 's3':
      storage = {
        type: 's3',
        bucket: required(e.S3_BUCKET, 'S3_BUCKET', 'when STORAGE_TYPE=s3'),
        region: e.S3_REGION,
        accessKeyId: e.S3_ACCESS_KEY,
        secretAccessKey: e.S3_SECRET_KEY,
        endpoint: e.S3_ENDPOINT,
        ...(e.S3_SSE ? { sse: e.S3_SSE } : {}),
        ...(e.S3_SSE_KMS_KEY_ID ? { sseKmsKeyId: e.S3_SSE_KMS_KEY_ID } : {}),
      };
      break;
    case 'azure':
      storage = {
        type: 'azure',
        connectionString: required(e.AZURE_STORAGE_CONNECTION_STRING, 'AZURE_STORAGE_CONNECTION_STRING', 'when STORAGE_TYPE=azure'),
        container: required(e.AZURE_CONTAINER, 'AZURE_CONTAINER', 'when STORAGE_TYPE=azure'),
        ...(e.AZURE_ENCRYPTION_SCOPE ? { encryptionScope: e.AZURE_ENCRYPTION_SCOPE } : {}),
      };
      break;
  }

  // Incoming files land here first; next to local storage so that storing is a rename, not a copy.
  const tempDir = path.resolve(
    cwd,
    e.TEMP_PATH ?? (storage.type === 'local' ? path.join(storage.root, '.tmp', 'incoming') : path.join(dataDir, 'incoming')),
  );

  // Offline nodes work out of the box with a per-install key kept under DATA_DIR; an online
  // node shares tokens across nodes, so it must be given a real key.
  let secretKey = e.SECRET_KEY;
  let secretKeyIsDefault = false;
  if (e.MODE === 'online' && (!secretKey || secretKey.length < 32 || secretKey === DEFAULT_SECRET)) {
    throw new ConfigError('SECRET_KEY must be set to at least 32 characters when MODE=online');
  }
  if (!secretKey) {
    secretKey = DEFAULT_SECRET;
    secretKeyIsDefault = true;
  }

  const allowedAes = e.DICOM_ALLOWED_AES.split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (Boolean(e.DICOM_TLS_CERT) !== Boolean(e.DICOM_TLS_KEY)) {
    throw new ConfigError('DICOM_TLS_CERT and DICOM_TLS_KEY are set together');
  }
  if (Boolean(e.HTTP_TLS_CERT) !== Boolean(e.HTTP_TLS_KEY)) {
    throw new ConfigError('HTTP_TLS_CERT and HTTP_TLS_KEY are set together');
  }

  // Node refuses a server whose headers may take longer than the whole request.
  if (e.HTTP_REQUEST_TIMEOUT_MS > 0 && e.HTTP_REQUEST_TIMEOUT_MS < e.HTTP_HEADERS_TIMEOUT_MS) {
    throw new ConfigError(
      `HTTP_REQUEST_TIMEOUT_MS (${e.HTTP_REQUEST_TIMEOUT_MS}) must be 0 or at least HTTP_HEADERS_TIMEOUT_MS (${e.HTTP_HEADERS_TIMEOUT_MS})`,
    );
  }

  // A job is taken as lost after JOB_STALE_MS without a heartbeat: one late heartbeat must not do it.
  if (e.JOB_STALE_MS < 2 * e.JOB_HEARTBEAT_MS) {
    throw new ConfigError(`JOB_STALE_MS (${e.JOB_STALE_MS}) must be at least twice JOB_HEARTBEAT_MS (${e.JOB_HEARTBEAT_MS})`);
  }

  return {
    mode: e.MODE,
    dataDir,
    tempDir,
    database,
    storage,
    dicom: {
      aeTitle: e.DICOM_AE_TITLE,
      port: e.DICOM_PORT,
      checkCalledAe: e.DICOM_CHECK_CALLED_AE,
      maxPdu: e.DICOM_MAX_PDU,
      maxAssociations: e.DICOM_MAX_ASSOCIATIONS,
      moveAssociations: e.DICOM_MOVE_ASSOCIATIONS,
      maxAssociationsPerAe: e.DICOM_MAX_ASSOCIATIONS_PER_AE,
      maxAssociationsPerAddress: e.DICOM_MAX_ASSOCIATIONS_PER_ADDRESS,
      artimTimeoutMs: e.DICOM_ARTIM_TIMEOUT_SECONDS * 1000,
      idleTimeoutMs: e.DICOM_IDLE_TIMEOUT_SECONDS * 1000,
      acceptUnknownSopClasses: e.DICOM_ACCEPT_UNKNOWN_SOP_CLASSES,
      allowedAes,
      // A hospital network (online) admits only known callers unless told otherwise; a lab bench stays open.
      allowlist: e.DICOM_ALLOWLIST ?? (allowedAes.length > 0 || e.MODE === 'online'),
      tls: { cert: e.DICOM_TLS_CERT, key: e.DICOM_TLS_KEY, ca: e.DICOM_TLS_CA },
    },
    httpPort: e.HTTP_PORT,
    http: {
      corsOrigins: e.CORS_ORIGINS.split(',')
        .map((o) => o.trim())
        .filter(Boolean),
      maxUploadBytes: e.MAX_UPLOAD_BYTES,
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: e.HTTP_KEEPALIVE_TIMEOUT_MS,
      maxConnections: e.HTTP_MAX_CONNECTIONS,
      trustProxy: e.HTTP_TRUST_PROXY,
      tls: { cert: e.HTTP_TLS_CERT, key: e.HTTP_TLS_KEY },
      hstsMaxAgeSeconds: e.HTTP_HSTS_MAX_AGE_SECONDS,
      rateLimit: {
        perUser: e.RATE_LIMIT_PER_USER,
        perAddress: e.RATE_LIMIT_PER_ADDRESS,
        windowMs: e.RATE_LIMIT_WINDOW_SECONDS * 1000,
      },
    },
    auth: {
      secretKey,
      secretKeyIsDefault,
      tokenExpirySeconds: e.TOKEN_EXPIRY_SECONDS,
      disabled: e.AUTH_DISABLED,
      bootstrap: e.AUTH_BOOTSTRAP ?? (e.MODE === 'online' ? 'token' : 'open'),
      bootstrapToken: e.AUTH_BOOTSTRAP_TOKEN,
      loginMaxAttempts: e.LOGIN_MAX_ATTEMPTS,
      loginWindowSeconds: e.LOGIN_WINDOW_SECONDS,
    },
    dicomweb: { qidoStrict: e.QIDO_STRICT, metadataPrebuildMs: e.METADATA_PREBUILD_MS },
    duplicatePolicy: e.DUPLICATE_POLICY,
    maxInstanceBytes: e.MAX_INSTANCE_BYTES,
    parse: { workers: e.PARSE_WORKERS ?? 2, timeoutMs: e.PARSE_TIMEOUT_MS },
    transcode: {
      workers: e.TRANSCODE_WORKERS ?? Math.max(1, Math.min(4, os.availableParallelism())),
      timeoutMs: e.TRANSCODE_TIMEOUT_MS,
      cacheBytes: e.TRANSCODE_CACHE_MB * 1024 * 1024,
    },
    maxFramePixels: e.MAX_FRAME_PIXELS,
    render: { workers: e.RENDER_WORKERS, timeoutMs: e.RENDER_TIMEOUT_MS },
    forwarding: {
      enabled: e.FORWARDING === 'on',
      batchSize: e.FORWARD_BATCH_SIZE,
      maxAttempts: e.FORWARD_MAX_ATTEMPTS,
      retryBaseMs: e.FORWARD_RETRY_BASE_MS,
      settleMs: e.FORWARD_SETTLE_MS,
      pollMs: e.FORWARD_POLL_MS,
    },
    jobs: {
      pollMs: e.JOB_POLL_MS,
      heartbeatMs: e.JOB_HEARTBEAT_MS,
      staleMs: e.JOB_STALE_MS,
      concurrency: e.JOB_CONCURRENCY,
      maxAttempts: e.JOB_MAX_ATTEMPTS,
      inServe: e.JOB_WORKER_IN_SERVE === 'on',
      retentionHours: e.JOB_RETENTION_HOURS,
    },
    medgemma: medgemmaConfig(e, cwd),
    hl7: {
      maxAttempts: e.HL7_MAX_ATTEMPTS,
      retryBaseMs: e.HL7_RETRY_BASE_MS,
      listenPort: e.HL7_LISTEN_PORT,
      allowedSenders: (e.HL7_ALLOWED_SENDERS ?? '')
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    },
    retention: {
      rules: parseRetentionRules(e.RETENTION_RULES),
      intervalMs: e.RETENTION_INTERVAL_MINUTES * 60_000,
      maxStudiesPerRun: e.RETENTION_MAX_STUDIES_PER_RUN,
    },
    institutionName: e.INSTITUTION_NAME ?? null,
    fhirPush: { maxAttempts: e.FHIR_PUSH_MAX_ATTEMPTS, retryBaseMs: e.FHIR_PUSH_RETRY_BASE_MS },
    auditSyslog: { url: e.AUDIT_SYSLOG_URL, caFile: e.AUDIT_SYSLOG_CA },
    auditMaxLagMs: e.AUDIT_MAX_LAG_MS,
    otel: { tracesUrl: otlpTracesUrl(e), serviceName: e.OTEL_SERVICE_NAME },
    workerHttpPort: e.WORKER_HTTP_PORT,
    analysis: {
      autoAnalyze: checkedAutoAnalyze(e),
      autoPublish: e.AUTO_PUBLISH ?? e.AUTO_ANALYZE !== 'off',
      publishWaitMs: e.REPORT_PUBLISH_WAIT_MS,
      autoRules: e.AUTO_ANALYZE_RULES,
      stableSeconds: e.STUDY_STABLE_SECONDS,
      maxSlices: e.MEDGEMMA_MAX_SLICES,
      recipe: e.MEDGEMMA_RECIPE,
      imageSize: e.ANALYSIS_IMAGE_SIZE,
      priorImages: e.ANALYSIS_PRIOR_IMAGES,
      maxFindings: e.ANALYSIS_MAX_FINDINGS,
      maxText: e.ANALYSIS_MAX_TEXT,
      maxTokens: e.ANALYSIS_MAX_TOKENS,
    },
    logLevel: e.LOG_LEVEL,
  };
}

/** The OTLP specification's rule: the signal-specific URL as given, else the base URL with /v1/traces. */
function otlpTracesUrl(e: Env): string | undefined {
  if (e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (!e.OTEL_EXPORTER_OTLP_ENDPOINT) return undefined;
  return `${e.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
}
