import assert from 'node:assert/strict';
import { indexInstance, indexInstanceIn } from '../src/catalog/catalog.js';
import { runQuery } from '../src/query/engine.js';
import { startTestCore, type TestCore } from './helpers/node.js';
import { generateStudies, instanceRecords } from './helpers/query-index.js';

/**
 * Searches read the SQLite index on their own connections (createReadDb), so a QIDO-RS or C-FIND
 * never waits for ingest's index transaction: while a write transaction is open on the writer,
 * a search answers at once with the last committed state, and sees the rows once committed.
 */
describe('SQLite read pool: searches beside the writer', function () {
  this.timeout(60_000);
  let core: TestCore;
  const [committed, pending] = generateStudies(2, 7);

  before(async () => {
    core = await startTestCore();
    for (const rec of instanceRecords([committed!])) await indexInstance(core.db, rec);
  });
  after(() => core?.cleanup());

  const studyUids = async () =>
    (await runQuery(core.readDb, { level: 'study', filters: {}, limit: 100 })).rows.map((r) => r.StudyInstanceUID).sort();

  it('is its own connection pool on a SQLite file', () => {
    assert.notEqual(core.readDb, core.db);
  });

  it('answers while an index transaction holds the writer, with the committed rows only', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inTransaction!: () => void;
    const begun = new Promise<void>((r) => (inTransaction = r));
    const write = core.db.transaction(async (trx) => {
      for (const rec of instanceRecords([pending!])) await indexInstanceIn(trx, rec);
      inTransaction();
      await held;
    });
    try {
      await begun;
      // On one shared connection this query would wait for the transaction, which waits for it.
      const during = await Promise.race([studyUids(), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000).unref())]);
      assert.deepEqual(during, [committed!.studyInstanceUid]);
    } finally {
      release();
      await write;
    }
    assert.deepEqual(await studyUids(), [committed!.studyInstanceUid, pending!.studyInstanceUid].sort());
  });

  it('refuses writes: only the writer writes', async () => {
    const [rec] = instanceRecords([generateStudies(1, 9)[0]!]);
    await assert.rejects(indexInstance(core.readDb, rec!), /readonly|query_only|SQLITE_READONLY/i);
  });
});
