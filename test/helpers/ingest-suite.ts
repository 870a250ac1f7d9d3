import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { makeCrImage, makeCtSeries, makeMrSeries, writeSeries, type GeneratedFile } from '../../fixtures/generate.js';
import { findInstance, getStudySummary, countInstances } from '../../src/catalog/catalog.js';
import { RadiantError } from '../../src/errors.js';
import { dimseStatusOf } from '../../dimse/error-status.js';
import type { InstanceStoredEvent } from '../../src/ingest/ingest.js';
import { readAll } from './streams.js';
import { rewrite } from './rewrite.js';
import { startTestCore, type TestCore } from './node.js';

/**
 * The ingest contract, run against every index/storage combination (SQLite or PostgreSQL,
 * local, S3 or Azure storage): what is acknowledged is stored byte for byte and indexed, what is
 * refused says why and changes nothing.
 */
export function describeIngestSuite(name: string, envFactory: () => Promise<Record<string, string>>): void {
  describe(`ingest path (${name})`, function () {
    this.timeout(120_000);
    let core: TestCore;
    let env: Record<string, string>;

    before(async () => {
      env = await envFactory();
      core = await startTestCore(env);
    });
    after(async () => {
      await core?.cleanup();
    });

    async function ingestBuffers(files: GeneratedFile[]) {
      return Promise.all(files.map((f) => core.ingestor.ingestStream(Readable.from([f.bytes]), { source: 'upload' })));
    }

    async function expectRefused(bytes: Buffer, kind: RadiantError['kind'], message: RegExp): Promise<void> {
      const before = await countInstances(core.db);
      const err = await core.ingestor.ingestStream(Readable.from([bytes]), { source: 'upload' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, 'should have been refused').to.be.instanceOf(RadiantError);
      expect((err as RadiantError).kind).to.equal(kind);
      expect((err as RadiantError).message).to.match(message);
      expect(await countInstances(core.db)).to.equal(before);
    }

    it('stores a CT series, an MR series and a CR in one study with the right counts', async () => {
      const common = { patient: { name: 'Müller^Jürgen=山田^太郎', id: `PID-${name}` }, accessionNumber: 'ACC1' };
      const ct = makeCtSeries({ ...common, slices: 12 });
      const studyInstanceUid = ct[0]!.studyInstanceUid;
      const mr = makeMrSeries({ ...common, slices: 5, studyInstanceUid, transferSyntax: 'implicit' });
      const cr = makeCrImage({ ...common, studyInstanceUid });
      const events: InstanceStoredEvent[] = [];
      core.ingestor.on('instance-stored', (e) => events.push(e));

      const results = await ingestBuffers([...ct, ...mr, ...cr]);
      expect(results.every((r) => r.outcome === 'stored')).to.equal(true);
      expect(events).to.have.length(18);

      const study = await getStudySummary(core.db, studyInstanceUid);
      expect(study).to.deep.include({
        num_series: 3,
        num_instances: 18,
        modalities_in_study: 'CR\\CT\\MR',
        patient_name: 'Müller^Jürgen=山田^太郎',
        accession_number: 'ACC1',
      });

      const implicitRow = await findInstance(core.db, mr[0]!.sopInstanceUid);
      expect(implicitRow!.transfer_syntax_uid).to.equal('1.2.840.10008.1.2');
      const stored = await readAll(await core.storage.get(implicitRow!.storage_key));
      expect(stored.equals(mr[0]!.bytes)).to.equal(true);
    });

    it('imports files from disk through the same path, leaving the source untouched', async () => {
      const dir = path.join(core.dir, 'src');
      const paths = await writeSeries(dir, makeCtSeries({ slices: 3 }));
      const r = await core.ingestor.ingestFile(paths[0]!, false, { source: 'import' });
      expect(r.outcome).to.equal('stored');
      expect((await fsp.stat(paths[0]!)).size).to.equal(r.sizeBytes);
    });

    it('overwrites a re-sent instance by default: one row, new content, counts unchanged', async () => {
      const [a] = makeCtSeries({ slices: 1 });
      await ingestBuffers([a!]);
      const edited = rewrite(a!.bytes, { '0008103E': 'edited' });
      const again = await core.ingestor.ingestStream(Readable.from([edited]), { source: 'upload' });
      expect(again.outcome).to.equal('replaced');
      const study = await getStudySummary(core.db, a!.studyInstanceUid);
      expect(study!.num_instances).to.equal(1);
      const row = await findInstance(core.db, a!.sopInstanceUid);
      expect((await readAll(await core.storage.get(row!.storage_key))).equals(edited)).to.equal(true);
    });

    it('refuses a truncated file with "cannot understand" and keeps serving', async () => {
      const [f] = makeCtSeries({ slices: 1 });
      await expectRefused(f!.bytes.subarray(0, 100), 'unparseable', /Part 10|cannot parse/);
      await expectRefused(Buffer.from('not dicom at all, just text'), 'unparseable', /Part 10/);
    });

    it('refuses an instance missing its Study Instance UID with 0xA900', async () => {
      const [f] = makeCrImage({});
      const bytes = rewrite(f!.bytes, { '0020000D': null });
      const err = await core.ingestor.ingestStream(Readable.from([bytes]), { source: 'upload' }).then(
        () => undefined,
        (e: unknown) => e as RadiantError,
      );
      expect(dimseStatusOf('store', err)).to.equal(0xa900);
      expect(err?.message).to.match(/Study Instance UID/);
    });

    it('refuses a data set whose SOP Instance UID differs from what the transport announced', async () => {
      const [f] = makeCrImage({});
      const err = await core.ingestor
        .ingestStream(Readable.from([f!.bytes]), { source: 'dimse', expected: { sopInstanceUid: '1.2.3.4' } })
        .then(
          () => undefined,
          (e: unknown) => e as RadiantError,
        );
      expect(err?.kind).to.equal('mismatch');
      expect(dimseStatusOf('store', err)).to.equal(0xa900);
      expect(await findInstance(core.db, f!.sopInstanceUid)).to.equal(undefined);
    });

    it('moves an instance re-sent under another series and drops the emptied series', async () => {
      const [f] = makeCrImage({});
      await ingestBuffers([f!]);
      const newSeries = `${f!.seriesInstanceUid}.9`;
      const moved = rewrite(f!.bytes, { '0020000E': newSeries });
      const r = await core.ingestor.ingestStream(Readable.from([moved]), { source: 'upload' });
      expect(r.outcome).to.equal('replaced');
      expect(r.seriesInstanceUid).to.equal(newSeries);
      const study = await getStudySummary(core.db, f!.studyInstanceUid);
      expect(study).to.include({ num_series: 1, num_instances: 1 });
      expect(await core.storage.exists(r.storageKey)).to.equal(true);
      const oldKey = r.storageKey.replace(newSeries, f!.seriesInstanceUid);
      expect(await core.storage.exists(oldKey), 'the replaced blob is deleted').to.equal(false);
    });

    it('applies DUPLICATE_POLICY=reject and ignore', async () => {
      const [f] = makeCrImage({});
      for (const policy of ['reject', 'ignore'] as const) {
        const c = await startTestCore({ ...env, DUPLICATE_POLICY: policy, DATA_DIR: path.join(core.dir, policy) });
        try {
          await c.ingestor.ingestStream(Readable.from([f!.bytes]), { source: 'upload' });
          const second = await c.ingestor.ingestStream(Readable.from([f!.bytes]), { source: 'upload' }).then(
            (r) => r.outcome,
            (e: unknown) => dimseStatusOf('store', e),
          );
          expect(second).to.equal(policy === 'reject' ? 0x0111 : 'ignored');
        } finally {
          await c.cleanup();
        }
      }
    });
  });
}
