#!/usr/bin/env node
import { loadConfig, type Config } from './config.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger, type Logger } from './logger.js';
import { openCore, startNode } from './app.js';
import { createDb, migrateLatest, migrationStatus } from './db/connection.js';
import { importPaths } from './ingest/import-files.js';
import { isRole, ROLES } from './auth/permissions.js';
import { createUser, UserExistsError } from './auth/users.js';
import { AuditLog } from './audit/audit.js';

const usage = `usage: radiant <command>

  serve                 start the node (DICOM listener on DICOM_PORT)
  migrate [--status]    apply database migrations (or list them)
  import <path>...      ingest DICOM files or directories through the node's ingest path
  user create <username> <role>
                        create a user (roles: admin, radiologist, technician, viewer, service);
                        the password is read from RADIANT_USER_PASSWORD or the first line of stdin
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
  const core = await openCore(config, log);
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
  // Commands other than serve print their results on stdout, so their logs go to stderr.
  const log = command === 'serve' ? createLogger(config.logLevel) : createLogger('warn', { stderr: true });
  switch (command) {
    case 'serve':
      await serve(config, log);
      return -1;
    case 'migrate':
      await migrate(config, args);
      return 0;
    case 'import':
      return runImport(config, log, args);
    case 'user':
      return userCommand(config, args);
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
