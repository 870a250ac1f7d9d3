import { expect } from 'chai';
import path from 'node:path';
import { createDb, migrateLatest, type Db } from '../src/db/connection.js';
import { listStudies } from '../src/records/studies.js';
import { seededUniform } from '../fixtures/random.js';
import { tempDir } from './helpers/node.js';
import { freshPostgresUrl } from './helpers/postgres.js';

/**
 * The worklist's keyset paging over 100 000 studies (SQLite and PostgreSQL): walking every page with
 * next_cursor returns each study exactly once, in the list order (date, time, id; NULLs last),
 * and a deep page costs what the first does (the figures are printed; the README quotes them).
 */

const STUDIES = 100_000;
const PATIENTS = 2_000;
const PAGE = 200;

interface Gen {
  id: number;
  date: string | null;
  time: string | null;
}

async function populate(db: Db): Promise<Gen[]> {
  const rnd = seededUniform(18);
  const now = new Date().toISOString();
  const patients = Array.from({ length: PATIENTS }, (_, i) => ({
    patient_id: `WL-${i}`,
    issuer_of_patient_id: '',
    patient_name: `PATIENT^${i}`,
    patient_name_norm: `PATIENT^${i}`,
    created_at: now,
    updated_at: now,
  }));
  await db.batchInsert('patients', patients, 500);
  const gen: Gen[] = [];
  const rows = Array.from({ length: STUDIES }, (_, i) => {
    const year = 2015 + Math.floor(rnd() * 10);
    const date =
      rnd() < 0.02
        ? null
        : `${year}${String(1 + Math.floor(rnd() * 12)).padStart(2, '0')}${String(1 + Math.floor(rnd() * 28)).padStart(2, '0')}`;
    const time =
      rnd() < 0.05 ? null : `${String(Math.floor(rnd() * 24)).padStart(2, '0')}${String(Math.floor(rnd() * 60)).padStart(2, '0')}00`;
    gen.push({ id: i + 1, date, time });
    return {
      id: i + 1,
      study_instance_uid: `1.2.826.0.1.3680043.10.1018.${i + 1}`,
      patient_pk: 1 + (i % PATIENTS),
      study_date: date,
      study_time: time,
      modalities_in_study: 'CT',
      num_series: 1,
      num_instances: 1,
      created_at: now,
      last_received_at: now,
    };
  });
  await db.transaction(async (trx) => {
    await trx.batchInsert('studies', rows, 500);
  });
  // Fresh statistics, as autovacuum would gather them soon after a bulk load: PostgreSQL's planner
  // needs them to pick the list index over a sort.
  if (db.client.config.client === 'pg') await db.raw('ANALYZE studies, patients');
  return gen;
}

/** The list order, computed in JS: date desc, time desc, NULLs last, then id desc. */
function compare(a: Gen, b: Gen): number {
  const key = (x: string | null, y: string | null) => (x === y ? 0 : x === null ? 1 : y === null ? -1 : x < y ? 1 : -1);
  return key(a.date, b.date) || key(a.time, b.time) || b.id - a.id;
}

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = process.hrtime.bigint();
  const value = await f();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, value };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function describePaging(name: string, open: () => Promise<Db>): void {
  describe(`worklist paging over 100 000 studies (${name})`, function () {
    this.timeout(600_000);
    let db: Db;
    let gen: Gen[];

    before(async () => {
      db = await open();
      await migrateLatest(db);
      gen = await populate(db);
    });
    after(async () => {
      await db?.destroy();
    });

    it('walks every page by cursor: each study once, in list order; a deep page costs what the first does', async () => {
      const expected = [...gen].sort(compare).map((g) => g.id);
      const seen: number[] = [];
      const pageMs: number[] = [];
      let cursor: string | undefined;
      /** The cursor each page was asked with (page n: cursors[n - 1]). */
      const cursors: Array<string | undefined> = [];
      for (;;) {
        cursors.push(cursor);
        const { ms, value } = await timed(() => listStudies(db, { sort: 'date', cursor, limit: PAGE, offset: 0 }));
        pageMs.push(ms);
        expect(value.total).to.equal(STUDIES);
        seen.push(...value.items.map((s) => s.id));
        if (!value.next_cursor) break;
        cursor = value.next_cursor;
      }
      expect(seen.length).to.equal(STUDIES);
      expect(seen).to.deep.equal(expected);
      // A full last page offers a cursor; the page after it is empty.
      expect(pageMs.length).to.be.within(STUDIES / PAGE, STUDIES / PAGE + 1);
      // Page 480 of 500: deep, and still among dated studies (the last pages hold the 2% without a date).
      const DEEP = 480;
      const deepCursor = cursors[DEEP - 1];

      // The same first and deepest pages again, several times each, for the figure.
      const first: number[] = [];
      const deep: number[] = [];
      const deepOffset: number[] = [];
      for (let i = 0; i < 7; i++) {
        first.push((await timed(() => listStudies(db, { sort: 'date', limit: PAGE, offset: 0 }))).ms);
        deep.push((await timed(() => listStudies(db, { sort: 'date', cursor: deepCursor, limit: PAGE, offset: 0 }))).ms);
        deepOffset.push((await timed(() => listStudies(db, { sort: 'date', limit: PAGE, offset: (DEEP - 1) * PAGE }))).ms);
      }
      const figure = {
        page1Ms: Number(median(first).toFixed(1)),
        [`page${DEEP}Ms`]: Number(median(deep).toFixed(1)),
        [`page${DEEP}ByOffsetMs`]: Number(median(deepOffset).toFixed(1)),
      };
      console.log(`      ${name} worklist page time (median of 7, ${PAGE} rows, ${STUDIES} studies): ${JSON.stringify(figure)}`);
      // Loose on a loaded machine: a keyset page deep in the list is not a multiple of the first.
      expect(figure[`page${DEEP}Ms`]).to.be.lessThan(figure.page1Ms * 3 + 50);
    });

    it('a date range and a patient filter page by cursor too', async () => {
      const inRange = gen.filter((g) => g.date !== null && g.date >= '20200101' && g.date <= '20201231').sort(compare);
      const seen: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await listStudies(db, {
          date_from: '2020-01-01',
          date_to: '2020-12-31',
          sort: 'date',
          cursor,
          limit: PAGE,
          offset: 0,
        });
        expect(page.total).to.equal(inRange.length);
        seen.push(...page.items.map((s) => s.id));
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      expect(seen).to.deep.equal(inRange.map((g) => g.id));

      const ofPatient = await listStudies(db, { patient: 'WL-1999', sort: 'patient', limit: PAGE, offset: 0 });
      expect(ofPatient.items.length).to.equal(STUDIES / PATIENTS);
      expect(ofPatient.items.every((s) => s.patient.patient_id === 'WL-1999')).to.equal(true);
    });
  });
}

describePaging('SQLite', async () => createDb({ client: 'sqlite', filename: path.join(await tempDir('worklist-paging'), 'index.sqlite') }));
describePaging('PostgreSQL', async () =>
  createDb({ client: 'pg', connection: await freshPostgresUrl('radiant_worklist_paging'), poolMax: 4 }),
);
