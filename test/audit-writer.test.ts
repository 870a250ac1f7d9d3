import { expect } from 'chai';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { AuditLog, type AuditEntry } from '../src/audit/audit.js';
import { createDb, migrateLatest, type Db } from '../src/db/connection.js';
import { createLogger } from '../src/logger.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';

/**
 * The audit writer (src/audit/audit-writer.ts through AuditLog): rows of concurrent requests are
 * group-committed and all present; a read's row does not wait for a busy writer, but no longer
 * than maxLagMs (the loss bound a crash has); a stop commits what is queued.
 */

const log = createLogger('silent', { stderr: true });
const entry = (n: number): AuditEntry => ({ actorType: 'system', actor: 'test', action: 'test.read', outcome: 'success', details: { n } });

async function sqliteDb(dir: string): Promise<Db> {
  const db = createDb({ client: 'sqlite', filename: path.join(dir, 'index.sqlite') });
  await migrateLatest(db);
  return db;
}

/** Holds the one SQLite writer connection (what a long ingest transaction does) until released. */
async function holdWriter(db: Db): Promise<() => Promise<void>> {
  const trx = await db.transaction();
  await trx.raw('select 1');
  return async () => {
    await trx.commit();
  };
}

const settledWithin = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('audit writer', function () {
  this.timeout(60_000);

  describe('on a node', () => {
    let node: TestNode;
    before(async () => {
      node = await startTestNode();
    });
    after(async () => {
      await node?.cleanup();
    });

    it('records every one of 40 concurrent reads, each with its own request id', async () => {
      const token = await tokenFor(node, 'viewer');
      const ids = Array.from({ length: 40 }, (_, i) => `aw-${process.pid}-${i}`);
      const answers = await Promise.all(
        ids.map((id) => fetch(`${baseUrl(node)}/dicom-web/studies`, { headers: { ...bearer(token), 'x-request-id': id } })),
      );
      for (const a of answers) expect([200, 204]).to.include(a.status);
      // The audit API commits what is queued before it answers.
      const { rows } = await node.audit.query({ action: 'dicomweb.qido', limit: 500, offset: 0 });
      const seen = new Set(rows.map((r) => String(r.details?.requestId)));
      expect(ids.filter((id) => !seen.has(id))).to.deep.equal([]);
      expect(node.audit.backlog().rows).to.equal(0);
    });
  });

  describe('on a busy writer', () => {
    let dir: string;
    let db: Db;
    beforeEach(async () => {
      dir = await tempDir('audit-writer');
      db = await sqliteDb(dir);
    });
    afterEach(async () => {
      await db.destroy();
      await fsp.rm(dir, { recursive: true, force: true });
    });

    const count = async (d: Db) =>
      Number(((await d('audit_logs').where({ action: 'test.read' }).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);

    it('a read goes on while the writer is held, a change waits for its commit', async () => {
      const audit = new AuditLog(db, log, { maxLagMs: 2000 });
      const release = await holdWriter(db);
      const queued = audit.record(entry(1), 'queued');
      const committed = audit.record(entry(2));
      expect(await settledWithin(queued, 1000), 'queued row resolved').to.equal(true);
      expect(await settledWithin(committed, 300), 'committed row resolved while the writer is held').to.equal(false);
      expect(audit.backlog().rows).to.equal(2);
      await release();
      await committed;
      expect(await count(db)).to.equal(2);
      expect(audit.backlog()).to.deep.equal({ rows: 0, oldestMs: 0 });
    });

    it('stops answering reads at once when rows have waited longer than maxLagMs (the loss bound)', async () => {
      const maxLagMs = 400;
      const audit = new AuditLog(db, log, { maxLagMs });
      const release = await holdWriter(db);
      const t0 = Date.now();
      const calls: Array<{ at: number; resolvedAt?: number; p: Promise<void> }> = [];
      while (Date.now() - t0 < 3 * maxLagMs) {
        const c: { at: number; resolvedAt?: number; p: Promise<void> } = { at: Date.now(), p: Promise.resolve() };
        c.p = audit.record(entry(calls.length), 'queued').then(() => {
          c.resolvedAt = Date.now();
        });
        calls.push(c);
        await new Promise((r) => setTimeout(r, 25));
        // However slow the machine: never an answered row older than the bound while nothing commits.
        const answered = calls.filter((x) => x.resolvedAt !== undefined);
        for (const x of answered) expect(x.at - t0, 'answered after the bound').to.be.at.most(maxLagMs + 50);
      }
      const before = calls.filter((x) => x.resolvedAt !== undefined).length;
      expect(before, 'some reads answered at once').to.be.greaterThan(0);
      expect(before, 'later reads wait for the commit').to.be.lessThan(calls.length);
      await release();
      await Promise.all(calls.map((c) => c.p));
      expect(await count(db)).to.equal(calls.length);
    });

    it('a stop commits the queued rows; AUDIT_MAX_LAG_MS=0 answers nothing before its commit', async () => {
      const audit = new AuditLog(db, log, { maxLagMs: 5000 });
      const release = await holdWriter(db);
      await Promise.all(Array.from({ length: 25 }, (_, i) => audit.record(entry(i), 'queued')));
      expect(audit.backlog().rows).to.equal(25);
      const closed = audit.flush();
      expect(await settledWithin(closed, 200)).to.equal(false);
      await release();
      await closed;
      await db.destroy();
      // What a restarted process finds in the file.
      db = await sqliteDb(dir);
      expect(await count(db)).to.equal(25);

      const strict = new AuditLog(db, log, { maxLagMs: 0 });
      const again = await holdWriter(db);
      const p = strict.record(entry(99), 'queued');
      expect(await settledWithin(p, 300)).to.equal(false);
      await again();
      await p;
      expect(await count(db)).to.equal(26);
    });
  });
});
