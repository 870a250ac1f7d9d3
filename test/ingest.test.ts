import { describeIngestSuite } from './helpers/ingest-suite.js';
import { startPostgres, type TestPostgres } from './helpers/postgres.js';

/** The one ingest path against the embedded default (SQLite + local files) and PostgreSQL. */

describeIngestSuite('SQLite + local storage', async () => ({}));

let pg: TestPostgres | undefined;
describeIngestSuite('PostgreSQL + local storage', async () => {
  pg = await startPostgres();
  return { DATABASE_URL: await pg.createDatabase('radiant_ingest') };
});
after(async () => {
  await pg?.stop();
});
