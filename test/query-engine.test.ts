import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { indexInstance, type InstanceRecord } from '../src/catalog/catalog.js';
import { createDb, migrateLatest, type Db } from '../src/db/connection.js';
import { QueryError, runQuery, type QueryRequest } from '../src/query/engine.js';
import { toDicomJson } from '../src/query/dicom-json.js';
import { tempDir } from './helpers/node.js';
import { freshPostgresUrl } from './helpers/postgres.js';
import { generateStudies, instanceRecords, populateIndex, type GenSeries, type GenStudy } from './helpers/query-index.js';

/**
 * The query engine against a generated index of 1 000 studies, on SQLite and on PostgreSQL, with
 * expected matches computed independently in JS from the generator's data.
 */

const STUDIES = generateStudies(1000);
const ALL = 100000;

/** DICOM wildcard → RegExp (the reference the SQL must agree with). */
function wild(pattern: string, flags = 'u'): RegExp {
  const body = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`, flags);
}
const up = (s: string) => s.toUpperCase();
const comps = (s: string) =>
  up(s)
    .split(/[\^=\s]+/)
    .filter(Boolean);
const fuzzy = (name: string, q: string) => comps(q).every((c) => comps(name).some((n) => n.startsWith(c)));
const inRange = (v: string, lo?: string, hi?: string) => (!lo || v >= lo) && (!hi || v <= hi);

interface StudyCase {
  name: string;
  filters: Record<string, string>;
  fuzzy?: boolean;
  expect: (s: GenStudy) => boolean;
  /** Guard against vacuous tests: the expected set must have at least this many. */
  min?: number;
}

const pick = (i: number) => STUDIES[i]!;

const studyCases: StudyCase[] = [
  { name: 'universal (no filters)', filters: {}, expect: () => true, min: 1000 },
  { name: 'empty value is universal', filters: { PatientName: '', StudyDate: '' }, expect: () => true, min: 1000 },
  { name: 'PatientID single value', filters: { PatientID: pick(5).patientId }, expect: (s) => s.patientId === pick(5).patientId, min: 1 },
  { name: 'PatientID by tag', filters: { '00100020': pick(9).patientId }, expect: (s) => s.patientId === pick(9).patientId, min: 1 },
  { name: 'PatientID wildcard *', filters: { PatientID: 'PID0001*' }, expect: (s) => s.patientId.startsWith('PID0001'), min: 5 },
  { name: 'PatientID wildcard ?', filters: { PatientID: '?ID0000?' }, expect: (s) => wild('?ID0000?').test(s.patientId), min: 1 },
  { name: 'PatientID is case-sensitive', filters: { PatientID: 'pid0001*' }, expect: () => false },
  {
    name: 'PatientName exact, case-insensitive',
    filters: { PatientName: 'smith^john' },
    expect: (s) => up(s.patientName) === 'SMITH^JOHN',
    min: 1,
  },
  {
    name: 'PatientName wildcard, case-insensitive',
    filters: { PatientName: 'doe*' },
    expect: (s) => up(s.patientName).startsWith('DOE'),
    min: 1,
  },
  { name: '_ is not a wildcard', filters: { PatientName: 'O_BRIEN*' }, expect: (s) => up(s.patientName).startsWith('O_BRIEN'), min: 1 },
  { name: '% is not a wildcard', filters: { PatientName: 'per%cent*' }, expect: (s) => up(s.patientName).startsWith('PER%CENT'), min: 1 },
  {
    name: '? matches one character',
    filters: { PatientName: 'O?BRIEN*' },
    expect: (s) => wild('O?BRIEN*').test(up(s.patientName)),
    min: 3,
  },
  {
    name: 'non-ASCII, case-insensitive',
    filters: { PatientName: 'müller*' },
    expect: (s) => up(s.patientName).startsWith('MÜLLER'),
    min: 1,
  },
  { name: 'non-ASCII inside', filters: { PatientName: '*ström*' }, expect: (s) => up(s.patientName).includes('STRÖM'), min: 1 },
  { name: 'non-ASCII with ?', filters: { PatientName: 'N?ÑEZ*' }, expect: (s) => up(s.patientName).startsWith('NÚÑEZ'), min: 1 },
  { name: 'quote in value', filters: { PatientName: "o'brien*" }, expect: (s) => up(s.patientName).startsWith("O'BRIEN"), min: 1 },
  {
    name: 'SQL-looking value matches nothing',
    filters: { PatientName: "x' OR '1'='1", PatientID: '1; DROP TABLE studies; --' },
    expect: () => false,
  },
  {
    name: 'fuzzy: prefix of a component',
    filters: { PatientName: 'joh' },
    fuzzy: true,
    expect: (s) => fuzzy(s.patientName, 'joh'),
    min: 2,
  },
  {
    name: 'fuzzy: several components',
    filters: { PatientName: 'van berg' },
    fuzzy: true,
    expect: (s) => fuzzy(s.patientName, 'van berg'),
    min: 1,
  },
  {
    name: 'fuzzy: given name with a space',
    filters: { PatientName: 'ann' },
    fuzzy: true,
    expect: (s) => fuzzy(s.patientName, 'ann'),
    min: 2,
  },
  { name: 'fuzzy: ^-form', filters: { PatientName: 'sm^jo' }, fuzzy: true, expect: (s) => fuzzy(s.patientName, 'sm^jo'), min: 1 },
  { name: 'fuzzy off: prefix alone does not match', filters: { PatientName: 'joh' }, expect: () => false },
  { name: 'StudyDate single', filters: { StudyDate: pick(3).studyDate }, expect: (s) => s.studyDate === pick(3).studyDate, min: 1 },
  {
    name: 'StudyDate closed range',
    filters: { StudyDate: '20190301-20200615' },
    expect: (s) => inRange(s.studyDate, '20190301', '20200615'),
    min: 50,
  },
  { name: 'StudyDate open end', filters: { StudyDate: '20230101-' }, expect: (s) => inRange(s.studyDate, '20230101'), min: 50 },
  {
    name: 'StudyDate open start',
    filters: { StudyDate: '-20160131' },
    expect: (s) => inRange(s.studyDate, undefined, '20160131'),
    min: 50,
  },
  { name: 'StudyDate OHIF range', filters: { StudyDate: '19700102-20991231' }, expect: () => true, min: 1000 },
  { name: 'StudyTime range', filters: { StudyTime: '10-12' }, expect: (s) => inRange(s.studyTime, '10', '129999.999999'), min: 50 },
  {
    name: 'PatientBirthDate range',
    filters: { PatientBirthDate: '19500101-19591231' },
    expect: (s) => inRange(s.patientBirthDate, '19500101', '19591231'),
    min: 10,
  },
  {
    name: 'StudyInstanceUID list (\\)',
    filters: { StudyInstanceUID: [pick(1), pick(500), pick(999)].map((s) => s.studyInstanceUid).join('\\') },
    expect: (s) => [pick(1), pick(500), pick(999)].includes(s),
    min: 3,
  },
  { name: 'UID has no wildcards', filters: { StudyInstanceUID: '1.2.826.*' }, expect: () => false },
  { name: 'ModalitiesInStudy one', filters: { ModalitiesInStudy: 'MR' }, expect: (s) => s.modalities.includes('MR'), min: 100 },
  {
    name: 'ModalitiesInStudy list',
    filters: { ModalitiesInStudy: 'CR\\SR' },
    expect: (s) => s.modalities.some((m) => m === 'CR' || m === 'SR'),
    min: 100,
  },
  { name: 'ModalitiesInStudy no partial', filters: { ModalitiesInStudy: 'C' }, expect: () => false },
  {
    name: 'AccessionNumber wildcard',
    filters: { AccessionNumber: 'ACC0001*' },
    expect: (s) => s.accessionNumber.startsWith('ACC0001'),
    min: 100,
  },
  {
    name: 'StudyDescription is case-sensitive',
    filters: { StudyDescription: 'chest' },
    expect: (s) => s.studyDescription === 'chest',
    min: 1,
  },
  {
    name: 'StudyDescription with ^',
    filters: { StudyDescription: 'ABDOMEN^*' },
    expect: (s) => s.studyDescription.startsWith('ABDOMEN^'),
    min: 1,
  },
  {
    name: 'ReferringPhysicianName case-insensitive',
    filters: { ReferringPhysicianName: 'wilson*' },
    expect: (s) => s.referringPhysicianName === 'Wilson^James',
    min: 1,
  },
  {
    name: 'several keys together',
    filters: { PatientSex: 'F', StudyDate: '20180101-20221231', ModalitiesInStudy: 'CT' },
    expect: (s) => s.patientSex === 'F' && inRange(s.studyDate, '20180101', '20221231') && s.modalities.includes('CT'),
    min: 20,
  },
  {
    name: 'unknown keys are ignored',
    filters: { Foo: 'bar', '00991234': 'x', PatientSex: 'M' },
    expect: (s) => s.patientSex === 'M',
    min: 100,
  },
  {
    name: 'NumberOfStudyRelatedSeries',
    filters: { NumberOfStudyRelatedSeries: '3' },
    expect: (s) => s.series.length === 3,
    min: 100,
  },
  // Sequence matching (PS3.4 C.2.2.2.6) on the study-level Procedure Code Sequence.
  ...procedureCases(),
];

function procedureCases(): StudyCase[] {
  const has = (s: GenStudy, f: (c: GenStudy['procedureCodes'][number]) => boolean) => s.procedureCodes.some(f);
  return [
    {
      name: 'sequence: CodeValue by keywords',
      filters: { 'ProcedureCodeSequence.CodeValue': 'CTCHEST' },
      expect: (s) => has(s, (c) => c.CodeValue === 'CTCHEST'),
      min: 100,
    },
    {
      name: 'sequence: CodeValue by tags',
      filters: { '00081032.00080100': 'MRHEAD' },
      expect: (s) => has(s, (c) => c.CodeValue === 'MRHEAD'),
      min: 100,
    },
    {
      name: 'sequence: item value is case-sensitive',
      filters: { 'ProcedureCodeSequence.CodeValue': 'ctchest' },
      expect: (s) => has(s, (c) => c.CodeValue === 'ctchest'),
      min: 100,
    },
    {
      name: 'sequence: wildcard on an item',
      filters: { 'ProcedureCodeSequence.CodeValue': 'CT*' },
      expect: (s) => has(s, (c) => c.CodeValue.startsWith('CT')),
      min: 100,
    },
    {
      name: 'sequence: list on an item',
      filters: { 'ProcedureCodeSequence.CodeValue': 'MRHEAD\\24627-2' },
      expect: (s) => has(s, (c) => c.CodeValue === 'MRHEAD' || c.CodeValue === '24627-2'),
      min: 100,
    },
    {
      name: 'sequence: two item keys match within one item',
      filters: { 'ProcedureCodeSequence.CodeValue': '24627-2', 'ProcedureCodeSequence.CodingSchemeDesignator': '99LOCAL' },
      // 24627-2 is always LN: only a study with another item of 99LOCAL could match across items.
      expect: (s) => has(s, (c) => c.CodeValue === '24627-2' && c.CodingSchemeDesignator === '99LOCAL'),
    },
    {
      name: 'sequence: two item keys, same item, matching',
      filters: { 'ProcedureCodeSequence.CodeValue': 'ctchest', '00081032.00080102': '99LOCAL' },
      expect: (s) => has(s, (c) => c.CodeValue === 'ctchest' && c.CodingSchemeDesignator === '99LOCAL'),
      min: 100,
    },
    { name: 'sequence: universal item value', filters: { 'ProcedureCodeSequence.CodeValue': '' }, expect: () => true, min: 1000 },
    { name: 'sequence: the sequence key alone is universal', filters: { ProcedureCodeSequence: '' }, expect: () => true, min: 1000 },
    {
      name: 'sequence: with other keys',
      filters: { 'ProcedureCodeSequence.CodeMeaning': '*Chest*', ModalitiesInStudy: 'CT' },
      expect: (s) => has(s, (c) => /Chest/.test(c.CodeMeaning ?? '')) && s.modalities.includes('CT'),
      min: 50,
    },
    {
      name: 'sequence: unindexed sequence ignored',
      filters: { 'ReferencedStudySequence.ReferencedSOPInstanceUID': '1.2.3', '00081110.00081155': '1.2' },
      expect: () => true,
      min: 1000,
    },
    {
      name: 'sequence: series-level sequence ignored at study level',
      filters: { 'RequestAttributesSequence.RequestedProcedureID': 'RP001' },
      expect: () => true,
      min: 1000,
    },
  ];
}

interface SeriesCase {
  name: string;
  req: Omit<QueryRequest, 'level' | 'limit'>;
  expect: (st: GenStudy, se: GenSeries) => boolean;
  min?: number;
}

const seriesCases: SeriesCase[] = [
  { name: 'all series', req: { filters: {} }, expect: () => true, min: 1500 },
  { name: 'Modality', req: { filters: { Modality: 'SR' } }, expect: (_st, se) => se.modality === 'SR', min: 100 },
  {
    name: 'Modality list by tag',
    req: { filters: { '00080060': 'CT\\MR' } },
    expect: (_st, se) => se.modality === 'CT' || se.modality === 'MR',
    min: 100,
  },
  { name: 'SeriesNumber', req: { filters: { SeriesNumber: '2' } }, expect: (_st, se) => se.seriesNumber === 2, min: 100 },
  {
    name: 'study attributes at series level',
    req: { filters: { Modality: 'CT', StudyDate: '20240101-' } },
    expect: (st, se) => se.modality === 'CT' && st.studyDate >= '20240101',
    min: 10,
  },
  {
    name: 'scoped to a study',
    req: { filters: {}, scope: { studyInstanceUid: pick(7).studyInstanceUid } },
    expect: (st) => st === pick(7),
    min: 1,
  },
  { name: 'scoped to an unknown study', req: { filters: {}, scope: { studyInstanceUid: '1.2.3.4' } }, expect: () => false },
  ...requestCases(),
];

/** Sequence matching on the series-level Request Attributes Sequence. */
function requestCases(): SeriesCase[] {
  type Item = GenSeries['requestAttributes'][number];
  const has = (se: GenSeries, f: (a: Item) => boolean) => se.requestAttributes.some(f);
  const rp = (v: string) => ({ 'RequestAttributesSequence.RequestedProcedureID': v });
  return [
    {
      name: 'sequence: RequestedProcedureID',
      req: { filters: rp('RP007') },
      expect: (_st, se) => has(se, (a) => a.RequestedProcedureID === 'RP007'),
      min: 20,
    },
    {
      name: 'sequence: by tags',
      req: { filters: { '00400275.00401001': 'RP012' } },
      expect: (_st, se) => has(se, (a) => a.RequestedProcedureID === 'RP012'),
      min: 20,
    },
    {
      name: 'sequence: keyword in any case',
      req: { filters: { 'requestattributessequence.requestedprocedureid': 'RP013' } },
      expect: (_st, se) => has(se, (a) => a.RequestedProcedureID === 'RP013'),
      min: 20,
    },
    {
      name: 'sequence: wildcard *',
      req: { filters: rp('RP00*') },
      expect: (_st, se) => has(se, (a) => (a.RequestedProcedureID ?? '').startsWith('RP00')),
      min: 100,
    },
    {
      name: 'sequence: wildcard ?',
      req: { filters: rp('RP0?5') },
      expect: (_st, se) => has(se, (a) => wild('RP0?5').test(a.RequestedProcedureID ?? '')),
      min: 50,
    },
    {
      name: 'sequence: list',
      req: { filters: rp('RP001\\RP039') },
      expect: (_st, se) => has(se, (a) => a.RequestedProcedureID === 'RP001' || a.RequestedProcedureID === 'RP039'),
      min: 20,
    },
    { name: 'sequence: no match', req: { filters: rp('RP999') }, expect: () => false },
    { name: 'sequence: universal value, also series without items', req: { filters: rp('*') }, expect: () => true, min: 1500 },
    {
      name: 'sequence: ScheduledProcedureStepID',
      req: { filters: { 'RequestAttributesSequence.ScheduledProcedureStepID': 'SPS1?.*' } },
      expect: (_st, se) => has(se, (a) => wild('SPS1?.*').test(a.ScheduledProcedureStepID ?? '')),
      min: 10,
    },
    {
      name: 'sequence: item AccessionNumber, not the study one',
      req: { filters: { '00400275.00080050': 'ACC00002*' } },
      expect: (_st, se) => has(se, (a) => (a.AccessionNumber ?? '').startsWith('ACC00002')),
      min: 10,
    },
    {
      // Study 5 has items {RP005, SPS5.1} and {RP006, SPS5.1B}: the keys hit different items.
      name: 'sequence: keys of different items do not combine',
      req: { filters: { ...rp('RP005'), 'RequestAttributesSequence.ScheduledProcedureStepID': 'SPS5.1B' } },
      expect: (_st, se) => has(se, (a) => a.RequestedProcedureID === 'RP005' && a.ScheduledProcedureStepID === 'SPS5.1B'),
    },
    {
      name: 'sequence: keys of one item combine',
      req: { filters: { ...rp('RP006'), 'RequestAttributesSequence.ScheduledProcedureStepID': 'SPS5.*B' } },
      expect: (_st, se) => has(se, (a) => a.RequestedProcedureID === 'RP006' && wild('SPS5.*B').test(a.ScheduledProcedureStepID ?? '')),
      min: 1,
    },
    {
      name: 'sequence: with Modality and a study sequence',
      req: { filters: { ...rp('RP01*'), Modality: 'CT', 'ProcedureCodeSequence.CodeValue': 'CTCHEST' } },
      expect: (st, se) =>
        has(se, (a) => (a.RequestedProcedureID ?? '').startsWith('RP01')) &&
        se.modality === 'CT' &&
        st.procedureCodes.some((c) => c.CodeValue === 'CTCHEST'),
      min: 5,
    },
    {
      name: 'sequence: unindexed item of an indexed sequence ignored',
      req: { filters: { 'RequestAttributesSequence.RequestedProcedureDescription': 'X' } },
      expect: () => true,
      min: 1500,
    },
  ];
}

function suite(label: string, open: () => Promise<{ db: Db; close: () => Promise<void> }>): void {
  describe(`query engine on ${label}`, function () {
    this.timeout(300_000);
    let db: Db;
    let close: () => Promise<void>;
    let instances = 0;

    before(async () => {
      ({ db, close } = await open());
      await migrateLatest(db);
      const started = Date.now();
      instances = await populateIndex(db, STUDIES);
      if (process.env.RADIANT_TEST_TIMING) console.log(`    ${label}: indexed ${instances} instances in ${Date.now() - started} ms`);
    });
    after(async () => close?.());

    const study = (filters: Record<string, string>, extra: Partial<QueryRequest> = {}) =>
      runQuery(db, { level: 'study', filters, limit: ALL, ...extra });

    for (const c of studyCases) {
      it(`study: ${c.name}`, async () => {
        const expected = STUDIES.filter(c.expect)
          .map((s) => s.studyInstanceUid)
          .sort();
        assert.ok(expected.length >= (c.min ?? 0), `generator gave only ${expected.length} for ${c.name}`);
        const res = await study(c.filters, { fuzzy: c.fuzzy });
        const got = res.rows.map((r) => String(r.StudyInstanceUID)).sort();
        assert.equal(res.truncated, false);
        assert.deepEqual(got, expected);
      });
    }

    for (const c of seriesCases) {
      it(`series: ${c.name}`, async () => {
        const expected = STUDIES.flatMap((st) => st.series.filter((se) => c.expect(st, se)).map((se) => se.seriesInstanceUid)).sort();
        assert.ok(expected.length >= (c.min ?? 0), `generator gave only ${expected.length}`);
        const res = await runQuery(db, { level: 'series', limit: ALL, ...c.req });
        assert.deepEqual(res.rows.map((r) => String(r.SeriesInstanceUID)).sort(), expected);
      });
    }

    it('instance level: SOPClassUID, scope and numbers', async () => {
      const sr = '1.2.840.10008.5.1.4.1.1.88.22';
      const expected = STUDIES.flatMap((st) =>
        st.series.flatMap((se) => se.instances.filter((i) => i.sopClassUid === sr).map((i) => i.sopInstanceUid)),
      ).sort();
      const res = await runQuery(db, { level: 'instance', filters: { SOPClassUID: sr }, limit: ALL });
      assert.deepEqual(res.rows.map((r) => String(r.SOPInstanceUID)).sort(), expected);
      assert.equal(res.rows.length + 0 > 0, true);

      const st = STUDIES.find((s) => s.series.length === 3 && s.series.every((x) => x.modality !== 'SR'))!;
      const se = st.series[1]!;
      const scoped = await runQuery(db, {
        level: 'instance',
        filters: {},
        limit: ALL,
        scope: { studyInstanceUid: st.studyInstanceUid, seriesInstanceUid: se.seriesInstanceUid },
      });
      assert.deepEqual(
        scoped.rows.map((r) => r.SOPInstanceUID),
        se.instances.map((i) => i.sopInstanceUid),
      );
      assert.deepEqual(
        scoped.rows.map((r) => r.InstanceNumber),
        se.instances.map((i) => i.instanceNumber),
      );
      assert.equal(scoped.rows[0]!.Rows, 512);
      assert.equal(scoped.rows[0]!.SeriesInstanceUID, se.seriesInstanceUid);
      assert.equal(scoped.rows[0]!.InstanceAvailability, 'ONLINE');

      const whole = await runQuery(db, {
        level: 'instance',
        filters: { Rows: '512' },
        limit: ALL,
        scope: { studyInstanceUid: st.studyInstanceUid },
      });
      assert.equal(
        whole.rows.length,
        st.series.reduce((n, x) => n + x.instances.length, 0),
      );
      // Without the series in the scope, series attributes come along.
      assert.ok(whole.attributes.some((a) => a.keyword === 'Modality'));
      assert.ok(whole.rows.every((r) => r.StudyInstanceUID === st.studyInstanceUid));
    });

    it('returns counts, modalities and study attributes', async () => {
      const s = pick(42);
      const [row] = (await study({ StudyInstanceUID: s.studyInstanceUid })).rows;
      assert.ok(row);
      assert.equal(row.PatientName, s.patientName);
      assert.equal(row.PatientID, s.patientId);
      assert.equal(row.StudyDate, s.studyDate);
      assert.equal(row.AccessionNumber, s.accessionNumber);
      assert.equal(row.ModalitiesInStudy, s.modalities.join('\\'));
      assert.equal(row.NumberOfStudyRelatedSeries, s.series.length);
      assert.equal(
        row.NumberOfStudyRelatedInstances,
        s.series.reduce((n, x) => n + x.instances.length, 0),
      );
      assert.equal(row.SpecificCharacterSet, 'ISO_IR 192');
      assert.equal(row.RetrieveURL, null);
      const json = toDicomJson(row, (await study({ StudyInstanceUID: s.studyInstanceUid })).attributes);
      assert.deepEqual(json['00100010'], { vr: 'PN', Value: [{ Alphabetic: s.patientName }] });
      assert.deepEqual(json['00201206'], { vr: 'IS', Value: [s.series.length] });
      assert.deepEqual(json['00080061'], { vr: 'CS', Value: s.modalities });
      assert.deepEqual(json['00081190'], { vr: 'UR' });
    });

    it('orders newest first and pages with limit/offset without gaps or repeats', async () => {
      const full = (await study({ StudyDate: '20200101-20211231' })).rows;
      const dates = full.map((r) => String(r.StudyDate));
      assert.deepEqual(dates, [...dates].sort().reverse());
      const seen: string[] = [];
      for (let offset = 0; ; offset += 37) {
        const page = await study({ StudyDate: '20200101-20211231' }, { limit: 37, offset });
        seen.push(...page.rows.map((r) => String(r.StudyInstanceUID)));
        assert.equal(page.truncated, offset + 37 < full.length, `truncated at offset ${offset}`);
        if (!page.truncated) break;
      }
      assert.deepEqual(
        seen,
        full.map((r) => String(r.StudyInstanceUID)),
      );
      const first = await study({}, { limit: 10 });
      assert.equal(first.rows.length, 10);
      assert.equal(first.truncated, true);
      const exact = await study({}, { limit: 1000 });
      assert.equal(exact.truncated, false);
      const beyond = await study({}, { limit: 10, offset: 5000 });
      assert.deepEqual([beyond.rows.length, beyond.truncated], [0, false]);
    });

    it('includefield: tags, keywords, all; unknown ones ignored unless strict', async () => {
      const base = await study({}, { limit: 1 });
      assert.ok(!base.attributes.some((a) => a.keyword === 'IssuerOfPatientID'));
      const inc = await study({}, { limit: 1, includeFields: ['00100021', 'bodypartexamined', '00991000', 'Nonsense'] });
      assert.ok(inc.attributes.some((a) => a.keyword === 'IssuerOfPatientID'));
      // A series attribute is not returned at study level.
      assert.ok(!inc.attributes.some((a) => a.keyword === 'BodyPartExamined'));
      const all = await study({}, { limit: 1, includeFields: ['all'] });
      assert.ok(all.attributes.some((a) => a.keyword === 'IssuerOfPatientID'));
      assert.ok(!all.attributes.some((a) => a.keyword === 'Modality'));
      const tags = all.attributes.map((a) => a.tag);
      assert.deepEqual(tags, [...tags].sort());
      await assert.rejects(study({}, { includeFields: ['Nonsense'], strict: true }), QueryError);
      await assert.rejects(study({ Nonsense: 'x' }, { strict: true }), QueryError);
      await assert.rejects(study({ SOPClassUID: '1.2' }, { strict: true }), QueryError);
    });

    it('sequences: returned with their stored items when matched or included', async () => {
      const st = STUDIES.find((s) => s.series.some((se) => se.requestAttributes.length === 2) && s.procedureCodes.length === 2)!;
      assert.ok(st, 'generator has a study with two request items and two procedure codes');
      const se = st.series.find((x) => x.requestAttributes.length === 2)!;
      const strip = (items: Array<Record<string, string | undefined>>) =>
        items.map((i) => Object.fromEntries(Object.entries(i).filter(([, v]) => v !== undefined)));

      const matched = await runQuery(db, {
        level: 'series',
        filters: { SeriesInstanceUID: se.seriesInstanceUid, '00400275.00401001': se.requestAttributes[1]!.RequestedProcedureID! },
        limit: ALL,
      });
      assert.equal(matched.rows.length, 1);
      assert.deepEqual(matched.rows[0]!.RequestAttributesSequence, strip(se.requestAttributes));
      const json = toDicomJson(matched.rows[0]!, matched.attributes);
      assert.deepEqual(json['00400275'], {
        vr: 'SQ',
        Value: [
          {
            '00080050': { vr: 'SH', Value: [st.accessionNumber] },
            '00400009': { vr: 'SH', Value: [se.requestAttributes[0]!.ScheduledProcedureStepID] },
            '00401001': { vr: 'SH', Value: [se.requestAttributes[0]!.RequestedProcedureID] },
          },
          {
            '00400009': { vr: 'SH', Value: [se.requestAttributes[1]!.ScheduledProcedureStepID] },
            '00401001': { vr: 'SH', Value: [se.requestAttributes[1]!.RequestedProcedureID] },
          },
        ],
      });

      const included = await runQuery(db, {
        level: 'study',
        filters: { StudyInstanceUID: st.studyInstanceUid },
        includeFields: ['00081032'],
        limit: ALL,
      });
      assert.deepEqual(included.rows[0]!.ProcedureCodeSequence, strip(st.procedureCodes));
      assert.ok(!included.attributes.some((a) => a.keyword === 'RequestAttributesSequence'));
      // Many rows at once (one items query per 500 owners), each with its own items.
      const many = await runQuery(db, {
        level: 'series',
        filters: {},
        includeFields: ['RequestAttributesSequence.RequestedProcedureID', 'ProcedureCodeSequence'],
        limit: ALL,
      });
      const bySeries = new Map(STUDIES.flatMap((s) => s.series.map((x) => [x.seriesInstanceUid, { s, x }] as const)));
      assert.ok(many.rows.length > 1500);
      for (const row of many.rows) {
        const g = bySeries.get(String(row.SeriesInstanceUID))!;
        assert.deepEqual(row.RequestAttributesSequence, strip(g.x.requestAttributes));
        assert.deepEqual(row.ProcedureCodeSequence, strip(g.s.procedureCodes));
      }
      const none = STUDIES.find((s) => s.procedureCodes.length === 0)!;
      const empty = await runQuery(db, {
        level: 'study',
        filters: { StudyInstanceUID: none.studyInstanceUid },
        includeFields: ['ProcedureCodeSequence'],
        limit: ALL,
      });
      assert.deepEqual(empty.rows[0]!.ProcedureCodeSequence, []);
      assert.deepEqual(toDicomJson(empty.rows[0]!, empty.attributes)['00081032'], { vr: 'SQ' });
      // Instance level carries the series' sequence too.
      const inst = await runQuery(db, {
        level: 'instance',
        filters: { 'RequestAttributesSequence.RequestedProcedureID': se.requestAttributes[0]!.RequestedProcedureID! },
        limit: ALL,
        scope: { studyInstanceUid: st.studyInstanceUid },
      });
      assert.deepEqual(
        inst.rows.map((r) => r.SOPInstanceUID).sort(),
        st.series
          .filter((x) => x.requestAttributes.some((a) => a.RequestedProcedureID === se.requestAttributes[0]!.RequestedProcedureID))
          .flatMap((x) => x.instances.map((i) => i.sopInstanceUid))
          .sort(),
      );
      assert.ok(inst.rows.every((r) => Array.isArray(r.RequestAttributesSequence)));
    });

    it('sequences: strict mode refuses unindexed and misplaced sequence keys; values on a sequence are errors', async () => {
      await assert.rejects(study({ 'ReferencedStudySequence.ReferencedSOPInstanceUID': '1.2' }, { strict: true }), QueryError);
      await assert.rejects(study({ '00081110.00081155': '1.2' }, { strict: true }), QueryError);
      await assert.rejects(study({ 'ProcedureCodeSequence.CodeValue.X': 'A' }, { strict: true }), QueryError);
      await assert.rejects(study({ 'RequestAttributesSequence.RequestedProcedureID': 'RP001' }, { strict: true }), QueryError);
      await assert.rejects(study({}, { includeFields: ['ReferencedStudySequence'], strict: true }), QueryError);
      await assert.rejects(study({ ProcedureCodeSequence: 'CTCHEST' }), QueryError);
      const ok = await study({ 'ProcedureCodeSequence.CodeValue': 'MRHEAD' }, { strict: true });
      assert.ok(ok.rows.length > 0);
    });

    it('sequences: a re-sent instance replaces the items; they go with their series', async () => {
      const [base] = [...instanceRecords([generateStudies(1, 99)[0]!])];
      const uid = '1.2.826.0.1.3680043.10.999.777777';
      const rec = (rp: string, seriesUid: string, code?: string): InstanceRecord => ({
        ...base!,
        patient: { ...base!.patient, patientId: 'ZZSEQUENCE' },
        study: { ...base!.study, studyInstanceUid: uid },
        series: { ...base!.series, seriesInstanceUid: seriesUid },
        instance: { ...base!.instance, sopInstanceUid: `${uid}.1.1` },
        sequences: { '00400275': [{ '00401001': rp }], ...(code ? { '00081032': [{ '00080100': code }] } : {}) },
      });
      const rps = async (v: string) =>
        (await runQuery(db, { level: 'series', filters: { 'RequestAttributesSequence.RequestedProcedureID': v }, limit: ALL })).rows.map(
          (r) => r.SeriesInstanceUID,
        );
      await indexInstance(db, rec('ZZOLD', `${uid}.1`, 'ZZCODE'));
      assert.deepEqual(await rps('ZZOLD'), [`${uid}.1`]);
      await indexInstance(db, rec('ZZNEW', `${uid}.1`));
      assert.deepEqual(await rps('ZZOLD'), []);
      assert.deepEqual(await rps('ZZNEW'), [`${uid}.1`]);
      // The study-level sequence was replaced too (the new instance carries none).
      assert.deepEqual((await study({ 'ProcedureCodeSequence.CodeValue': 'ZZCODE' })).rows, []);
      // Record without `sequences`: the stored items stay.
      await indexInstance(db, { ...rec('ZZNEW', `${uid}.1`), sequences: undefined });
      assert.deepEqual(await rps('ZZNEW'), [`${uid}.1`]);
      const oldSeries = (await db('series').select('id').where('series_instance_uid', `${uid}.1`).first()) as { id: number };
      // Moved to another series: the old series is removed, and its items with it (cascade).
      await indexInstance(db, rec('ZZMOVED', `${uid}.2`));
      assert.equal(
        Number(((await db('sequence_items').where('series_pk', oldSeries.id).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n),
        0,
      );
      assert.deepEqual(await rps('ZZNEW'), []);
      assert.deepEqual(await rps('ZZMOVED'), [`${uid}.2`]);
      // Clean up so that the generated index is what the other tests expect.
      const studyRow = (await db('studies').select('id').where('study_instance_uid', uid).first()) as { id: number };
      await db.transaction(async (trx) => {
        await trx('instances').whereIn('series_pk', trx('series').select('id').where('study_pk', studyRow.id)).delete();
        await trx('series').where('study_pk', studyRow.id).delete();
        await trx('studies').where('id', studyRow.id).delete();
      });
      assert.equal(
        Number(((await db('sequence_items').where('study_pk', studyRow.id).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n),
        0,
      );
    });

    it('malformed dates and numbers are QueryErrors', async () => {
      await assert.rejects(study({ StudyDate: '2024-01-01' }), QueryError);
      await assert.rejects(study({ StudyDate: 'yesterday' }), QueryError);
      await assert.rejects(study({ StudyDate: '-' }), QueryError);
      await assert.rejects(study({ NumberOfStudyRelatedSeries: 'three' }), QueryError);
      await assert.rejects(study({}, { limit: -1 }), QueryError);
    });
  });
}

suite('SQLite', async () => {
  const dir = await tempDir('query');
  const db = createDb({ client: 'sqlite', filename: path.join(dir, 'index.sqlite') });
  return {
    db,
    close: async () => {
      await db.destroy();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
});

suite('PostgreSQL', async () => {
  const db = createDb({ client: 'pg', connection: await freshPostgresUrl('query_engine'), poolMax: 4 });
  return { db, close: () => db.destroy() };
});
