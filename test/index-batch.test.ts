import assert from 'node:assert/strict';
import { indexInstance, indexInstancesIn, type InstanceRecord } from '../src/catalog/catalog.js';
import type { Db } from '../src/db/connection.js';
import { startTestCore, type TestCore } from './helpers/node.js';

/**
 * The index writer commits the instances that arrive together in one transaction
 * (indexInstancesIn), skipping a parent row the same as the one just written, writing indexed
 * sequences from the last instance of each series and study, and recounting once. Whatever the
 * batch, the index must end as indexing the same instances one after the other leaves it.
 */

const STUDY = '1.2.826.0.1.3680043.8.498.900';
const REQUEST_ATTRIBUTES = '00400275';
const ACCESSION = '00080050';

function rec(sop: string, series: string, opts: { description?: string; modality?: string; accession?: string[] } = {}): InstanceRecord {
  return {
    patient: { patientId: 'BATCH1', issuerOfPatientId: '', patientName: 'BATCH^ONE' },
    study: { studyInstanceUid: STUDY, studyDescription: 'batch' },
    series: { seriesInstanceUid: `${STUDY}.${series}`, modality: opts.modality ?? 'CT', seriesDescription: opts.description ?? 'A' },
    sequences: opts.accession ? { [REQUEST_ATTRIBUTES]: opts.accession.map((a) => ({ [ACCESSION]: a })) } : {},
    instance: {
      sopInstanceUid: `${STUDY}.${series}.${sop}`,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      sizeBytes: 100,
      storageKey: `k/${series}/${sop}`,
      source: 'dimse',
    },
  };
}

/** The index as UIDs and values, without row ids (which batches need not reproduce). */
async function snapshot(db: Db) {
  const series = await db('series as se')
    .join('studies as st', 'st.id', 'se.study_pk')
    .select('se.series_instance_uid', 'se.series_description', 'se.modality', 'se.num_instances')
    .orderBy('se.series_instance_uid');
  const studies = await db('studies')
    .select('study_instance_uid', 'num_series', 'num_instances', 'modalities_in_study')
    .orderBy('study_instance_uid');
  const instances = await db('instances as i')
    .join('series as se', 'se.id', 'i.series_pk')
    .select('i.sop_instance_uid', 'se.series_instance_uid', 'i.storage_key')
    .orderBy('i.sop_instance_uid');
  const items = await db('sequence_items as q')
    .leftJoin('series as se', 'se.id', 'q.series_pk')
    .select('se.series_instance_uid', 'q.sequence_tag', 'q.item_index', 'q.value')
    .orderBy(['se.series_instance_uid', 'q.item_index']);
  return { series, studies, instances, items };
}

describe('index writer batches: the same index as one instance at a time', function () {
  this.timeout(60_000);
  let one: TestCore;
  let batched: TestCore;

  beforeEach(async () => {
    one = await startTestCore();
    batched = await startTestCore();
  });
  afterEach(async () => {
    await one?.cleanup();
    await batched?.cleanup();
  });

  async function both(recs: InstanceRecord[]) {
    for (const r of recs) await indexInstance(one.db, r);
    const results = await batched.db.transaction((trx) => indexInstancesIn(trx, recs));
    return { results, sequential: await snapshot(one.db), batch: await snapshot(batched.db) };
  }

  it('keeps the last values of a series that changed and changed back, and the last instance’s sequence items', async () => {
    const { sequential, batch } = await both([
      rec('1', '1', { description: 'A', accession: ['ACC1'] }),
      rec('2', '1', { description: 'B', accession: ['ACC2'] }),
      rec('3', '1', { description: 'A' }),
      rec('1', '2', { modality: 'MR', accession: ['ACC3', 'ACC4'] }),
    ]);
    assert.deepEqual(batch, sequential);
    assert.equal(batch.series[0]!.series_description, 'A', 'the third instance changed the description back');
    assert.deepEqual(
      batch.items.map((i) => i.value),
      ['ACC3', 'ACC4'],
      "series 1's last instance carries no request: its items are gone",
    );
    assert.deepEqual(batch.studies[0], { study_instance_uid: STUDY, num_series: 2, num_instances: 4, modalities_in_study: 'CT\\MR' });
  });

  it('answers each instance its row and the row it replaced, also when the batch sends one instance twice', async () => {
    for (const db of [one.db, batched.db]) await indexInstance(db, rec('1', '1'));
    const { results, sequential, batch } = await both([rec('2', '1'), rec('1', '1', { description: 'C' }), rec('2', '1')]);
    assert.deepEqual(batch, sequential);
    assert.equal(results.length, 3);
    assert.equal(results[0]!.replaced, undefined);
    assert.deepEqual(results[1]!.replaced, { storageKey: 'k/1/1', seriesPk: results[1]!.seriesPk });
    assert.equal(results[2]!.replaced?.storageKey, 'k/1/2', 'the second copy replaces the first of the same batch');
    assert.equal(results[0]!.instancePk, results[2]!.instancePk);
  });

  it('moves instances whose series changed and drops the series they emptied', async () => {
    for (const db of [one.db, batched.db]) {
      await indexInstance(db, rec('1', '1'));
      await indexInstance(db, rec('2', '1'));
    }
    const moved = (sop: string) => ({ ...rec(sop, '3'), instance: { ...rec(sop, '1').instance, storageKey: `k/3/${sop}` } });
    const { results, sequential, batch } = await both([moved('1'), moved('2')]);
    assert.deepEqual(batch, sequential);
    assert.deepEqual(
      batch.series.map((s) => [s.series_instance_uid, s.num_instances]),
      [[`${STUDY}.3`, 2]],
    );
    assert.equal(results[0]!.replaced?.storageKey, 'k/1/1');
  });
});
