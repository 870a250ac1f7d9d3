#!/usr/bin/env node
import { conformanceStatement } from './http/conformance.js';
import { loadConfig, type Config } from './config.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger, type Logger } from './logger.js';
import { webUiDir } from './http/routes/web-ui.js';
import { openCore, runWorkerProcess, startNode } from './app.js';
import { createDb, migrateLatest, migrationStatus } from './db/connection.js';
import { importPaths } from './ingest/import-files.js';
import { isRole, ROLES } from './auth/permissions.js';
import { createUser, UserExistsError } from './auth/users.js';
import { AuditLog } from './audit/audit.js';
import { PRIVATE_UMASK } from './private-files.js';
import { checkPair, formatSummary, ggufSummary, ModelInfoError } from './medgemma/model-info.js';
import { ModelPullError, pullModel, validatePullUri } from './medgemma/model-pull.js';
import { resolveModelPaths } from './medgemma/model-identity.js';
import { EngineError } from './medgemma/engine.js';
import { EngineHost } from './medgemma/engine-host.js';
import { AutoAnalyzer } from './analysis/auto-analyze.js';
import { ANALYSIS_JOB } from './analysis/pipeline.js';
import type { AnalysisRequester } from './analysis/requests.js';
import { ManifestError, parseManifest, type EvalCase } from './analysis/eval/manifest.js';
import { runEval } from './analysis/eval/run-eval.js';
import { formatTable, summarize, type EvalModel, type StudyOutcome } from './analysis/eval/eval-result.js';
import { jobHandlers } from './jobs/handlers.js';
import { startJobWorker } from './jobs/start.js';
import type { JobWorker } from './jobs/worker.js';
import fs from 'node:fs';
import { previewRetention, runRetention } from './retention/retention.js';
import { BackupError, backupNode, restoreNode } from './backup/backup.js';
import fsp from 'node:fs/promises';
import path from 'node:path';

const usage = `usage: radiant <command>

  serve                 start the node (DICOM listener on DICOM_PORT)
  worker                run background jobs (the JOB_* settings) on the node's database, no listeners
  migrate [--status]    apply database migrations (or list them)
  import <path>...      ingest DICOM files or directories through the node's ingest path
  user create <username> <role>
                        create a user (roles: admin, radiologist, technician, viewer, service);
                        the password is read from RADIANT_USER_PASSWORD or the first line of stdin
  eval <manifest.jsonl> [--out <file>] [--timeout <s>]
                        analyse a labelled set (JSON lines: study files or UID, expected labels)
                        with the configured MedGemma engine; prints sensitivity, specificity,
                        PPV/NPV, kappa, safety flags, failures and latency per label, and writes
                        the JSON result (default eval-<timestamp>.json; --timeout per study, 1800 s)
  model info [path] [--mmproj <file>]
                        describe a GGUF model or projector (architecture, parameters,
                        quantization, context, image size, SHA-256) and check that a model and
                        its mmproj fit; path defaults to MEDGEMMA_MODEL_PATH (a file or a folder)
  model pull <hf:user/repo/file.gguf> [--dir <folder>] [--timeout <s>]
                        download a GGUF file (default folder: DATA_DIR/models; HF_TOKEN for gated
                        repositories; --timeout bounds the look-up, default 30 s)
  retention [--dry-run] [--limit <n>]
                        apply RETENTION_RULES now through the one delete path (audited), at most
                        RETENTION_MAX_STUDIES_PER_RUN studies (or --limit); --dry-run lists what would be
                        deleted and kept, and why, and deletes nothing
  backup <dir> [--with-blobs]
                        write a consistent database dump (SQLite: VACUUM INTO; PostgreSQL: pg_dump -Fc),
                        a storage manifest (key, size, SHA-256) and the blobs (local storage; object
                        storage with --with-blobs) into an empty folder
  restore <dir> [--force]
                        restore a backup into this node's (empty) database and storage; --force
                        replaces what is there. Every blob is checked against the manifest
  conformance [--write | --check]
                        print the DICOM Conformance Statement generated from the code's tables;
                        --write updates docs/conformance.md, --check fails when it differs
  help                  this text

Configuration is read from environment variables; see README.md.`;

async function serve(config: Config, log: Logger): Promise<void> {
  const node = await startNode(config, log);
  const ui = `http://localhost:${node.httpPort}/`;
  log.info(
    {
      mode: config.mode,
      db: config.database.client,
      storage: config.storage.type,
      dicomPort: node.dicomPort,
      httpPort: node.httpPort,
      ui,
      viewer: `${ui}viewer/`,
      uiBuilt: fs.existsSync(path.join(webUiDir(), 'index.html')),
    },
    `RadiantAI node ready: web UI at ${ui}`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    node.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function migrate(config: Config, args: string[]): Promise<void> {
  const db = createDb(config.database);
  try {
    if (args.includes('--status')) {
      const { completed, pending } = await migrationStatus(db);
      for (const m of completed) console.log(`applied  ${m}`);
      for (const m of pending) console.log(`pending  ${m}`);
      return;
    }
    const applied = await migrateLatest(db);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
  } finally {
    await db.destroy();
  }
}

async function runImport(config: Config, log: Logger, paths: string[]): Promise<number> {
  if (paths.length === 0) {
    console.error('radiant import: give at least one file or directory');
    return 2;
  }
  // Its own spool, and nothing of a running serve's touched: openCore empties the spool it is given.
  const tempDir = path.join(path.dirname(config.tempDir), `import-${process.pid}`);
  const core = await openCore({ ...config, tempDir }, log, { cleanStorageTemp: false });
  try {
    const summary = await importPaths(core.ingestor, paths, {
      onResult: (r) => {
        if (r.ok) console.log(`${r.outcome.padEnd(8)} ${r.path} ${r.sopInstanceUid}`);
        else console.log(`refused  ${r.path}: ${r.error}`);
      },
    });
    const secs = summary.elapsedMs / 1000;
    console.log(
      `${summary.files} files: ${summary.stored} stored, ${summary.refused} refused; ` +
        `${(summary.bytes / 1e6).toFixed(1)} MB in ${secs.toFixed(2)} s ` +
        `(${(summary.stored / Math.max(secs, 1e-9)).toFixed(1)} instances/s, ${(summary.bytes / 1e6 / Math.max(secs, 1e-9)).toFixed(1)} MB/s)`,
    );
    return summary.refused > 0 ? 1 : 0;
  } finally {
    await core.close();
    await fsp.rm(tempDir, { recursive: true, force: true });
  }
}

/** `radiant eval`: 0 when it ran (whatever the figures), 1 when no study could be analysed, 2 on a bad manifest. */
async function runEvalCommand(config: Config, log: Logger, args: string[]): Promise<number> {
  const rest = [...args];
  const opt = (name: string): string | undefined => {
    const i = rest.indexOf(name);
    if (i < 0) return undefined;
    const [, v] = rest.splice(i, 2);
    return v;
  };
  const out = opt('--out') ?? `eval-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  const timeoutS = Number(opt('--timeout') ?? 1800);
  const manifest = rest[0];
  if (!manifest || rest.length > 1 || !(timeoutS > 0)) {
    console.error('usage: radiant eval <manifest.jsonl> [--out <file>] [--timeout <seconds per study>]');
    return 2;
  }
  let cases: EvalCase[];
  try {
    cases = parseManifest(await fsp.readFile(manifest, 'utf8'), manifest, path.dirname(path.resolve(manifest)));
  } catch (err) {
    if (err instanceof ManifestError) {
      for (const p of err.problems) console.error(`radiant eval: ${p}`);
      return 2;
    }
    console.error(`radiant eval: cannot read ${manifest}: ${errorMessage(err)}`);
    return 2;
  }
  const startedAt = new Date().toISOString();
  // Its own spool (as import), and no automatic analyses of what it imports: only its own requests.
  const tempDir = path.join(path.dirname(config.tempDir), `eval-${process.pid}`);
  const evalConfig: Config = { ...config, tempDir, analysis: { ...config.analysis, autoAnalyze: 'off' } };
  const core = await openCore(evalConfig, log, { cleanStorageTemp: false });
  const engine = new EngineHost(config.medgemma, log);
  let worker: JobWorker | undefined;
  try {
    engine.start();
    while (engine.status.state === 'starting') await new Promise((r) => setTimeout(r, 200));
    const st = engine.status;
    if (st.state !== 'ready') {
      console.error(`radiant eval: MedGemma engine is ${st.state}${st.error ? `: ${st.error}` : ''}; no study analysed`);
      return 1;
    }
    const requester: AnalysisRequester = { db: core.db, queue: core.queue, wake: () => worker?.wake() };
    const handlers = jobHandlers({ ...core, autoAnalyzer: new AutoAnalyzer(requester, evalConfig.analysis, log) }, engine);
    worker = startJobWorker(core, log, { [ANALYSIS_JOB]: handlers[ANALYSIS_JOB]! });
    const onStudy = (o: StudyOutcome) =>
      console.log(
        o.status === 'succeeded'
          ? `ok       ${o.id}: analysis ${o.analysisId}, ${o.findings} findings, predicted ` +
              (Object.entries(o.predicted ?? {})
                .filter(([, v]) => v)
                .map(([k]) => k)
                .join(', ') || 'none')
          : `failed   ${o.id}: ${o.error}`,
      );
    const deps = { db: core.db, ingestor: core.ingestor, requester, log, studyTimeoutMs: timeoutS * 1000, onStudy };
    const outcomes = await runEval(deps, cases);
    const first = outcomes.find((o) => o.model)?.model;
    const id = st.model;
    const model: EvalModel = {
      name: id?.name ?? first?.name ?? null,
      sha256: id?.sha256 ?? first?.sha256 ?? null,
      quantization: id?.quantization ?? null,
      backend: st.backend,
      mmprojSha256: id?.mmproj?.sha256 ?? null,
      // A remote endpoint's weights cannot be checked from here (src/medgemma/backends/remote.ts).
      validated: id ? id.validated : st.backend === 'remote' ? false : null,
      validation: id?.validation.reason ?? (st.backend === 'remote' ? 'a remote endpoint' : null),
    };
    const result = summarize(outcomes, { manifest: path.resolve(manifest), startedAt, finishedAt: new Date().toISOString(), model });
    await fsp.writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(formatTable(result));
    console.log(`\nresult: ${path.resolve(out)}`);
    return result.studies.analysed > 0 ? 0 : 1;
  } finally {
    await worker?.stop();
    await engine.close();
    await core.close();
    await fsp.rm(tempDir, { recursive: true, force: true });
  }
}

/** `radiant retention`: 0 when every selected study was deleted (or listed), 1 when some failed, 2 on bad arguments. */
async function retentionCommand(config: Config, log: Logger, args: string[]): Promise<number> {
  const dryRun = args.includes('--dry-run');
  const i = args.indexOf('--limit');
  const limit = i >= 0 ? Number(args[i + 1]) : config.retention.maxStudiesPerRun;
  const known = new Set(['--dry-run', '--limit', ...(i >= 0 ? [args[i + 1]] : [])]);
  if (!Number.isInteger(limit) || limit < 1 || args.some((a) => !known.has(a))) {
    console.error('usage: radiant retention [--dry-run] [--limit <studies>]');
    return 2;
  }
  if (config.retention.rules.length === 0) {
    console.log('no retention rules (RETENTION_RULES is unset): nothing to do');
    return 0;
  }
  const tempDir = path.join(path.dirname(config.tempDir), `retention-${process.pid}`);
  const core = await openCore({ ...config, tempDir }, log, { cleanStorageTemp: false });
  try {
    if (dryRun) {
      const items = await previewRetention(core, config.retention.rules, { limit });
      for (const it of items) {
        console.log(
          `${it.action === 'delete' ? 'would delete' : 'keep        '} ${it.study_instance_uid} (${it.instances} instances): ${it.reason}`,
        );
      }
      const n = items.filter((it) => it.action === 'delete').length;
      console.log(`dry run: ${n} studies would be deleted, ${items.length - n} kept; nothing was deleted`);
      return 0;
    }
    const r = await runRetention(core, config.retention.rules, { maxStudies: limit, actor: { type: 'system', name: 'cli' } });
    for (const it of r.deleted) console.log(`deleted ${it.study_instance_uid} (${it.instances} instances): ${it.reason}`);
    console.log(`${r.deleted.length} studies deleted, ${r.failed} failed${r.truncated ? '; more are due (limit reached)' : ''}`);
    return r.failed > 0 ? 1 : 0;
  } finally {
    await core.close();
    await fsp.rm(tempDir, { recursive: true, force: true });
  }
}

/** `radiant backup <dir> [--with-blobs]` and `radiant restore <dir> [--force]`: 0 done, 1 refused or failed, 2 bad arguments. */
async function backupCommand(config: Config, command: 'backup' | 'restore', args: string[]): Promise<number> {
  const flag = command === 'backup' ? '--with-blobs' : '--force';
  const dirs = args.filter((a) => a !== flag);
  if (dirs.length !== 1 || dirs[0]!.startsWith('-')) {
    console.error(`usage: radiant ${command} <dir> [${flag}]`);
    return 2;
  }
  const dir = path.resolve(dirs[0]!);
  try {
    if (command === 'backup') {
      const { manifest, bytes } = await backupNode(config, dir, { withBlobs: args.includes(flag) });
      const copied = manifest.objects.filter((o) => o.copied).length;
      console.log(
        `backup ${dir}: ${manifest.database.client} database (${manifest.database.file}), ${manifest.objects.length} objects ` +
          `(${(bytes / 1e6).toFixed(1)} MB, ${copied} copied), ${JSON.stringify(manifest.counts)}`,
      );
      return 0;
    }
    const r = await restoreNode(config, dir, { force: args.includes(flag) });
    console.log(`restored ${dir}: ${r.restored} objects copied, ${JSON.stringify(r.counts)}`);
    if (r.missing.length > 0) {
      console.error(
        `radiant restore: ${r.missing.length} objects of the manifest are in neither the backup nor the storage: ${r.missing.slice(0, 10).join(', ')}`,
      );
      return 1;
    }
    return 0;
  } catch (err) {
    if (err instanceof BackupError || err instanceof ConfigError) {
      console.error(`radiant ${command}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

async function readPassword(): Promise<string> {
  const fromEnv = process.env.RADIANT_USER_PASSWORD;
  if (fromEnv) return fromEnv;
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split('\n')[0]!.replace(/\r$/, '');
}

async function userCommand(config: Config, args: string[]): Promise<number> {
  const [sub, username, role] = args;
  if (sub !== 'create' || !username || !role) {
    console.error('usage: radiant user create <username> <role>');
    return 2;
  }
  if (!isRole(role)) {
    console.error(`radiant user: unknown role '${role}' (one of ${ROLES.join(', ')})`);
    return 2;
  }
  const password = await readPassword();
  if (password.length < 10) {
    console.error('radiant user: the password must have at least 10 characters');
    return 2;
  }
  const db = createDb(config.database);
  try {
    await migrateLatest(db);
    const user = await createUser(db, { username, password, role });
    await new AuditLog(db, createLogger('warn', { stderr: true })).record({
      actorType: 'system',
      actor: 'cli',
      action: 'user.create',
      resourceType: 'user',
      resourceId: String(user.id),
      outcome: 'success',
    });
    console.log(`created user ${user.username} (${user.role})`);
    return 0;
  } catch (err) {
    if (err instanceof UserExistsError) {
      console.error(`radiant user: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    await db.destroy();
  }
}

async function modelCommand(config: Config, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const opt = (name: string) => {
    const i = rest.indexOf(name);
    if (i < 0) return undefined;
    const v = rest[i + 1];
    rest.splice(i, 2);
    return v;
  };
  if (sub === 'info') {
    const mmprojArg = opt('--mmproj');
    const target = rest[0] ?? config.medgemma.modelPath;
    if (!target) {
      console.error('usage: radiant model info <file.gguf|folder> [--mmproj <file>] (or set MEDGEMMA_MODEL_PATH)');
      return 2;
    }
    try {
      const files = resolveModelPaths(target, mmprojArg ?? (rest[0] ? undefined : config.medgemma.mmprojPath));
      const model = await ggufSummary(files.model);
      console.log(formatSummary(model));
      if (files.mmproj) {
        const mmproj = await ggufSummary(files.mmproj);
        console.log(`\n${formatSummary(mmproj)}`);
        checkPair(model, mmproj);
        console.log(`\npair: ok (projection ${mmproj.projectionDim} = embedding ${model.embeddingLength})`);
      }
      return 0;
    } catch (err) {
      if (err instanceof ModelInfoError || err instanceof EngineError) {
        console.error(`radiant model info: ${err.message}`);
        return 1;
      }
      throw err;
    }
  }
  if (sub === 'pull') {
    const dir = opt('--dir') ?? path.join(config.dataDir, 'models');
    const timeoutS = Number(opt('--timeout') ?? 30);
    try {
      const uri = validatePullUri(rest[0]);
      const file = await pullModel(uri, dir, (line) => process.stderr.write(`\r${line}   `), timeoutS * 1000);
      process.stderr.write('\n');
      console.log(file);
      return 0;
    } catch (err) {
      if (err instanceof ModelPullError) {
        console.error(`radiant model pull: ${err.message}`);
        // the downloader may still be retrying in the background: do not wait for it
        process.exit(err.usage ? 2 : 1);
      }
      throw err;
    }
  }
  console.error('usage: radiant model info [path] [--mmproj <file>] | radiant model pull <hf:user/repo/file.gguf> [--dir <folder>]');
  return 2;
}

/** The statement is the code's tables, not this node's settings: no configuration is read. */
async function conformanceCommand(args: string[]): Promise<number> {
  const text = conformanceStatement();
  const file = path.resolve('docs/conformance.md');
  if (args[0] === '--write') {
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, text);
    return 0;
  }
  if (args[0] === '--check') {
    const current = await fsp.readFile(file, 'utf8').catch(() => '');
    if (current === text) return 0;
    console.error("radiant conformance: docs/conformance.md differs from the code's tables; run `npm run conformance`");
    return 1;
  }
  process.stdout.write(text);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(usage);
    return command ? 0 : 2;
  }
  if (command === 'conformance') return conformanceCommand(args);
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`radiant: configuration error: ${err.message}`);
      return 2;
    }
    throw err;
  }
  // Everything the node writes (database, blobs, keys, logs) is for its own user only.
  process.umask(PRIVATE_UMASK);
  // Commands other than serve and worker print their results on stdout, so their logs go to stderr.
  const log = command === 'serve' || command === 'worker' ? createLogger(config.logLevel) : createLogger('warn', { stderr: true });
  switch (command) {
    case 'serve':
      await serve(config, log);
      return -1;
    case 'worker':
      await runWorkerProcess(config, log);
      return 0;
    case 'migrate':
      await migrate(config, args);
      return 0;
    case 'import':
      return runImport(config, log, args);
    case 'eval':
      return runEvalCommand(config, log, args);
    case 'user':
      return userCommand(config, args);
    case 'model':
      return modelCommand(config, args);
    case 'retention':
      return retentionCommand(config, log, args);
    case 'backup':
    case 'restore':
      return backupCommand(config, command, args);
    default:
      console.error(`radiant: unknown command '${command}'\n\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // serve keeps running; every other command exits with its status.
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`radiant: ${errorMessage(err)}`);
    process.exit(1);
  },
);
