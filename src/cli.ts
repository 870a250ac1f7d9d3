#!/usr/bin/env node
import { loadConfig, type Config } from './config.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger, type Logger } from './logger.js';
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
  model info [path] [--mmproj <file>]
                        describe a GGUF model or projector (architecture, parameters,
                        quantization, context, image size, SHA-256) and check that a model and
                        its mmproj fit; path defaults to MEDGEMMA_MODEL_PATH (a file or a folder)
  model pull <hf:user/repo/file.gguf> [--dir <folder>] [--timeout <s>]
                        download a GGUF file (default folder: DATA_DIR/models; HF_TOKEN for gated
                        repositories; --timeout bounds the look-up, default 30 s)
  help                  this text

Configuration is read from environment variables; see README.md.`;

async function serve(config: Config, log: Logger): Promise<void> {
  const node = await startNode(config, log);
  log.info(
    { mode: config.mode, db: config.database.client, storage: config.storage.type, dicomPort: node.dicomPort },
    'RadiantAI node ready',
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

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(usage);
    return command ? 0 : 2;
  }
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
    case 'user':
      return userCommand(config, args);
    case 'model':
      return modelCommand(config, args);
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
