import type { Knex } from 'knex';
import { seededUniform } from '../fixtures/random.js';

/**
 * A large synthetic index for the QIDO-RS bench, written straight into the index tables (no DICOM
 * files, no ingest): patients, studies, series, instances and Request Attributes Sequence items,
 * consistent with the schema and with what ingest would have written (upper-cased names, counts,
 * ModalitiesInStudy). Rows go in with multi-row INSERTs of bound parameters, many per
 * transaction, with ids assigned here so no row has to be read back. Deterministic: the same
 * arguments give the same index, so the queries the bench times have the same answers each run.
 */

export interface IndexShape {
  studies: number;
  /** Instances per study, spread over 1–5 series (default 100: 10 000 studies → 1 000 000). */
  instancesPerStudy?: number;
}

export interface GeneratedIndex {
  patients: number;
  studies: number;
  series: number;
  instances: number;
  ms: number;
  /** Values that exist in the index, for the bench's queries. */
  sample: { patientId: string; studyInstanceUid: string; seriesInstanceUid: string; requestedProcedureId: string };
}

const FAMILY = [
  'SMITH',
  'JOHNSON',
  'WILLIAMS',
  'BROWN',
  'JONES',
  'GARCIA',
  'MILLER',
  'DAVIS',
  'RODRIGUEZ',
  'MARTINEZ',
  'HERNANDEZ',
  'LOPEZ',
  'GONZALEZ',
  'WILSON',
  'ANDERSON',
  'THOMAS',
  'TAYLOR',
  'MOORE',
  'JACKSON',
  'MARTIN',
  'LEE',
  'PEREZ',
  'THOMPSON',
  'WHITE',
  'HARRIS',
  'SANCHEZ',
  'CLARK',
  'RAMIREZ',
  'LEWIS',
  'ROBINSON',
  'Müller',
  'Núñez',
  'Doe',
  'van der Berg',
];
const GIVEN = [
  'John',
  'Jane',
  'Mary',
  'Robert',
  'Patricia',
  'Michael',
  'Linda',
  'David',
  'Elizabeth',
  'James',
  'Anna',
  'José',
  'Björn',
  'Li',
];
const MODS = ['CT', 'MR', 'CR', 'DX', 'US', 'PT', 'SR'];
const CLASS: Record<string, string> = {
  CT: '1.2.840.10008.5.1.4.1.1.2',
  MR: '1.2.840.10008.5.1.4.1.1.4',
  CR: '1.2.840.10008.5.1.4.1.1.1',
  DX: '1.2.840.10008.5.1.4.1.1.1.1',
  US: '1.2.840.10008.5.1.4.1.1.6.1',
  PT: '1.2.840.10008.5.1.4.1.1.128',
  SR: '1.2.840.10008.5.1.4.1.1.88.22',
};
const ROOT = '1.2.826.0.1.3680043.10.4242';

const rng = seededUniform;

const pad = (n: number, w: number) => String(n).padStart(w, '0');

/** Multi-row INSERT with bound parameters only, in slices under both dialects' parameter limits. */
async function insertRows(trx: Knex.Transaction, table: string, columns: string[], rows: unknown[][]): Promise<void> {
  const per = Math.floor(30000 / columns.length);
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  for (let at = 0; at < rows.length; at += per) {
    const slice = rows.slice(at, at + per);
    await trx.raw(`INSERT INTO ?? (${columns.map(() => '??').join(', ')}) VALUES ${slice.map(() => tuple).join(', ')}`, [
      table,
      ...columns,
      ...(slice.flat() as Knex.RawBinding[]),
    ]);
  }
}

const PATIENT_COLS = [
  'id',
  'patient_id',
  'issuer_of_patient_id',
  'patient_name',
  'patient_name_norm',
  'patient_birth_date',
  'patient_sex',
  'created_at',
  'updated_at',
];
const STUDY_COLS = [
  'id',
  'study_instance_uid',
  'patient_pk',
  'study_date',
  'study_time',
  'accession_number',
  'referring_physician_name',
  'study_description',
  'study_id',
  'modalities_in_study',
  'num_series',
  'num_instances',
  'created_at',
  'last_received_at',
];
const SERIES_COLS = [
  'id',
  'series_instance_uid',
  'study_pk',
  'modality',
  'series_number',
  'series_description',
  'body_part_examined',
  'num_instances',
  'created_at',
  'last_received_at',
];
const INSTANCE_COLS = [
  'id',
  'sop_instance_uid',
  'series_pk',
  'sop_class_uid',
  'instance_number',
  'rows',
  'columns',
  'number_of_frames',
  'transfer_syntax_uid',
  'size_bytes',
  'storage_key',
  'source',
  'stored_at',
];
const ITEM_COLS = ['study_pk', 'series_pk', 'sequence_tag', 'item_index', 'item_tag', 'value'];

/** Studies per transaction: ~100 000 instance rows at the default shape. */
const STUDIES_PER_COMMIT = 1000;

/** Fills an empty, migrated index. */
export async function generateIndex(db: Knex, shape: IndexShape): Promise<GeneratedIndex> {
  const t0 = Date.now();
  const perStudy = shape.instancesPerStudy ?? 100;
  const r = rng(4242);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const ts = new Date('2025-01-01T00:00:00Z').toISOString();
  const nPatients = Math.max(1, Math.ceil(shape.studies / 3));

  const patients: unknown[][] = [];
  for (let p = 1; p <= nPatients; p++) {
    const given = pick(GIVEN);
    const name = `${pick(FAMILY)}^${given}`;
    patients.push([
      p,
      `PID${pad(p, 7)}`,
      '',
      name,
      name.toUpperCase(),
      `${1930 + Math.floor(r() * 80)}${pad(1 + Math.floor(r() * 12), 2)}${pad(1 + Math.floor(r() * 28), 2)}`,
      pick(['M', 'F']),
      ts,
      ts,
    ]);
  }
  await db.transaction((trx) => insertRows(trx, 'patients', PATIENT_COLS, patients));

  let seriesId = 0;
  let instanceId = 0;
  let sample: GeneratedIndex['sample'] | undefined;
  // A study from the middle of the index with five series (i % 5 === 4).
  const sampleStudy = Math.min(shape.studies, Math.floor(shape.studies / 10) * 5 + 4);
  for (let from = 1; from <= shape.studies; from += STUDIES_PER_COMMIT) {
    const studies: unknown[][] = [];
    const series: unknown[][] = [];
    const instances: unknown[][] = [];
    const items: unknown[][] = [];
    for (let i = from; i < Math.min(from + STUDIES_PER_COMMIT, shape.studies + 1); i++) {
      const studyUid = `${ROOT}.${i}`;
      const nSeries = 1 + (i % 5);
      const mods: string[] = [];
      for (let j = 0; j < nSeries; j++) {
        const modality = pick(MODS);
        mods.push(modality);
        const seriesUid = `${studyUid}.${j + 1}`;
        const n = Math.floor(perStudy / nSeries) + (j < perStudy % nSeries ? 1 : 0);
        seriesId++;
        series.push([
          seriesId,
          seriesUid,
          i,
          modality,
          j + 1,
          `${modality} series ${j + 1}`,
          pick(['CHEST', 'HEAD', 'ABDOMEN', 'KNEE']),
          n,
          ts,
          ts,
        ]);
        const rp = `RP${pad(i % 5000, 5)}`;
        items.push(
          [i, seriesId, '00400275', 0, '00401001', rp],
          [i, seriesId, '00400275', 0, '00400009', `SPS${i}.${j + 1}`],
          [i, seriesId, '00400275', 0, '00080050', `A${pad(i, 9)}`],
        );
        for (let k = 1; k <= n; k++) {
          instanceId++;
          const sop = `${seriesUid}.${k}`;
          instances.push([
            instanceId,
            sop,
            seriesId,
            CLASS[modality],
            k,
            512,
            512,
            1,
            '1.2.840.10008.1.2.1',
            524_288,
            `studies/${studyUid}/series/${seriesUid}/instances/${sop}.dcm`,
            'import',
            ts,
          ]);
        }
        if (i === sampleStudy && j === 0) {
          sample = {
            patientId: `PID${pad(1 + (i % nPatients), 7)}`,
            studyInstanceUid: studyUid,
            seriesInstanceUid: seriesUid,
            requestedProcedureId: rp,
          };
        }
      }
      const date = `${2010 + Math.floor(r() * 16)}${pad(1 + Math.floor(r() * 12), 2)}${pad(1 + Math.floor(r() * 28), 2)}`;
      const time = `${pad(Math.floor(r() * 24), 2)}${pad(Math.floor(r() * 60), 2)}${pad(Math.floor(r() * 60), 2)}`;
      // Patient (i mod nPatients)+1: three studies each, and sample.patientId is a real owner.
      studies.push([
        i,
        studyUid,
        1 + (i % nPatients),
        date,
        time,
        `A${pad(i, 9)}`,
        pick(['HOUSE^GREGORY', 'WILSON^JAMES', 'CUDDY^LISA']),
        pick(['CHEST', 'HEAD CT', 'ABDOMEN', 'KNEE MR']),
        String(i),
        [...new Set(mods)].sort().join('\\'),
        nSeries,
        perStudy,
        ts,
        ts,
      ]);
    }
    await db.transaction(async (trx) => {
      await insertRows(trx, 'studies', STUDY_COLS, studies);
      await insertRows(trx, 'series', SERIES_COLS, series);
      await insertRows(trx, 'instances', INSTANCE_COLS, instances);
      await insertRows(trx, 'sequence_items', ITEM_COLS, items);
    });
  }
  if (String((db.client as { config: { client: unknown } }).config.client) === 'pg') {
    // Ids were assigned here: move the serial sequences past them for later ingests.
    for (const t of ['patients', 'studies', 'series', 'instances']) {
      await db.raw(`SELECT setval(pg_get_serial_sequence(?, 'id'), (SELECT COALESCE(MAX(id), 1) FROM ??))`, [t, t]);
    }
  }
  // Planner statistics, as a long-running index would have them.
  await db.raw('ANALYZE');
  return { patients: nPatients, studies: shape.studies, series: seriesId, instances: instanceId, ms: Date.now() - t0, sample: sample! };
}
