import { describeIngestSuite } from './helpers/ingest-suite.js';
import { onBothDatabases } from './helpers/postgres.js';

/** The one ingest path against the embedded default (SQLite + local files) and PostgreSQL. */

onBothDatabases((db, env) => describeIngestSuite(`${db} + local storage`, env), 'radiant_ingest');
