import assert from 'node:assert/strict';
import { makeCtSeries } from '../fixtures/generate.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { generateStudies, populateIndex, type GenStudy } from './helpers/query-index.js';
import { multipartBody, stowContentType } from './helpers/stow.js';

/** QIDO-RS over a real node: the six endpoints, DICOM JSON, OHIF's queries, errors, audit. */

type Dataset = Record<string, { vr: string; Value?: unknown[] }>;

describe('QIDO-RS', function () {
  this.timeout(120_000);
  let node: TestNode;
  let url: string;
  let auth: Record<string, string>;
  const studies: GenStudy[] = generateStudies(150, 7);
  const s0 = studies[0]!;

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${url}/dicom-web${path}`, { headers: { accept: 'application/dicom+json', ...auth, ...headers } });
  const json = async (path: string, headers: Record<string, string> = {}): Promise<Dataset[]> => {
    const res = await get(path, headers);
    assert.equal(res.status, 200, `${path}: ${res.status} ${await res.clone().text()}`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/dicom\+json/);
    return (await res.json()) as Dataset[];
  };
  const uidsOf = (rows: Dataset[], tag: string) => rows.map((r) => r[tag]?.Value?.[0] as string);

  before(async () => {
    node = await startTestNode();
    url = baseUrl(node);
    await populateIndex(node.db, studies);
    auth = bearer(await tokenFor(node, 'viewer'));
  });
  after(async () => node?.cleanup());

  it('/studies: required attributes in DICOM JSON', async () => {
    const rows = await json(`/studies?StudyInstanceUID=${s0.studyInstanceUid}`);
    assert.equal(rows.length, 1);
    const r = rows[0]!;
    for (const tag of [
      '00080005',
      '00080020',
      '00080030',
      '00080050',
      '00080056',
      '00080061',
      '00080090',
      '00081190',
      '00100010',
      '00100020',
      '00100030',
      '00100040',
      '0020000D',
      '00200010',
      '00201206',
      '00201208',
    ]) {
      assert.ok(r[tag], `missing ${tag}`);
    }
    assert.deepEqual(r['00100010'], { vr: 'PN', Value: [{ Alphabetic: s0.patientName }] });
    assert.deepEqual(r['00080005'], { vr: 'CS', Value: ['ISO_IR 192'] });
    assert.deepEqual(r['00080056'], { vr: 'CS', Value: ['ONLINE'] });
    assert.deepEqual(r['00201206'], { vr: 'IS', Value: [s0.series.length] });
    assert.deepEqual(r['00201208'], { vr: 'IS', Value: [s0.series.reduce((n, s) => n + s.instances.length, 0)] });
    assert.deepEqual(r['00080061'], { vr: 'CS', Value: s0.modalities });
    assert.deepEqual(r['00081190'], { vr: 'UR', Value: [`${url}/dicom-web/studies/${s0.studyInstanceUid}`] });
    assert.deepEqual(r['00080020'], { vr: 'DA', Value: [s0.studyDate] });
  });

  it('/studies/{study}/series and /series', async () => {
    const rows = await json(`/studies/${s0.studyInstanceUid}/series`);
    assert.deepEqual(
      uidsOf(rows, '0020000E'),
      s0.series.map((s) => s.seriesInstanceUid),
    );
    const r = rows[0]!;
    assert.deepEqual(r['00080060'], { vr: 'CS', Value: [s0.series[0]!.modality] });
    assert.deepEqual(r['00200011'], { vr: 'IS', Value: [1] });
    assert.deepEqual(r['00201209'], { vr: 'IS', Value: [s0.series[0]!.instances.length] });
    assert.deepEqual(r['00400244'], { vr: 'DA' });
    assert.deepEqual(r['00081190'], {
      vr: 'UR',
      Value: [`${url}/dicom-web/studies/${s0.studyInstanceUid}/series/${s0.series[0]!.seriesInstanceUid}`],
    });

    const all = await json('/series?Modality=SR&limit=10000');
    const expected = studies.flatMap((st) => st.series.filter((s) => s.modality === 'SR').map((s) => s.seriesInstanceUid)).sort();
    assert.deepEqual(uidsOf(all, '0020000E').sort(), expected);
    // Without the study in the path, study attributes come along.
    assert.ok(all[0]!['00100010'] && all[0]!['0020000D']);
  });

  it('the three instance endpoints', async () => {
    const se = s0.series[0]!;
    const inSeries = await json(`/studies/${s0.studyInstanceUid}/series/${se.seriesInstanceUid}/instances`);
    assert.deepEqual(
      uidsOf(inSeries, '00080018'),
      se.instances.map((i) => i.sopInstanceUid),
    );
    const r = inSeries[0]!;
    assert.deepEqual(r['00080016'], { vr: 'UI', Value: [se.instances[0]!.sopClassUid] });
    assert.deepEqual(r['00200013'], { vr: 'IS', Value: [1] });
    assert.ok(r['00280010'] && r['00280011'] && r['00280008']);
    assert.deepEqual(r['00081190'], {
      vr: 'UR',
      Value: [
        `${url}/dicom-web/studies/${s0.studyInstanceUid}/series/${se.seriesInstanceUid}/instances/${se.instances[0]!.sopInstanceUid}`,
      ],
    });

    const inStudy = await json(`/studies/${s0.studyInstanceUid}/instances`);
    assert.deepEqual(uidsOf(inStudy, '00080018').sort(), s0.series.flatMap((s) => s.instances.map((i) => i.sopInstanceUid)).sort());
    assert.ok(inStudy[0]!['0020000E'] && inStudy[0]!['00080060']);

    const all = await json(`/instances?SOPInstanceUID=${se.instances[0]!.sopInstanceUid}`);
    assert.equal(all.length, 1);
    assert.ok(all[0]!['00100020'] && all[0]!['0020000E']);
  });

  it("OHIF's study query: fuzzymatching, includefield list, open date range, limit", async () => {
    const rows = await json('/studies?limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060&StudyDate=19700102-20991231');
    assert.equal(rows.length, 101);
    assert.ok(rows[0]!['00081030']);
    const dates = rows.map((r) => String(r['00080020']?.Value?.[0]));
    assert.deepEqual(dates, [...dates].sort().reverse());
  });

  it('tag-form keys, \\-joined UIDs, repeated includefield, fuzzy names', async () => {
    const byTag = await json(`/studies?00100020=${s0.patientId}&includefield=00100021&includefield=StudyID`);
    assert.deepEqual(
      uidsOf(byTag, '0020000D').sort(),
      studies
        .filter((s) => s.patientId === s0.patientId)
        .map((s) => s.studyInstanceUid)
        .sort(),
    );
    assert.ok(byTag[0]!['00100021']);

    const three = [studies[1]!, studies[50]!, studies[149]!].map((s) => s.studyInstanceUid);
    const listed = await json(`/studies?StudyInstanceUID=${encodeURIComponent(three.join('\\'))}`);
    assert.deepEqual(uidsOf(listed, '0020000D').sort(), [...three].sort());
    const repeated = await json(`/studies?0020000D=${three[0]}&0020000D=${three[1]}`);
    assert.equal(repeated.length, 2);

    const family = s0.patientName.split('^')[0]!;
    const prefix = family.slice(0, 3).toLowerCase();
    const fuzzy = await json(`/studies?fuzzymatching=true&PatientName=${encodeURIComponent(prefix)}`);
    const comps = (n: string) => n.toUpperCase().split(/[\^\s]+/);
    const expect = studies
      .filter((s) => comps(s.patientName).some((c) => c.startsWith(prefix.toUpperCase())))
      .map((s) => s.studyInstanceUid);
    assert.deepEqual(uidsOf(fuzzy, '0020000D').sort(), expect.sort());
    assert.ok(expect.length > 0);
  });

  it('Warning header when limit truncates; [] (200) for no match; unknown keys ignored', async () => {
    const res = await get('/studies?limit=5');
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as unknown[]).length, 5);
    assert.match(res.headers.get('warning') ?? '', /^299 .+: "The number of results exceeded/);
    const full = await get('/studies?limit=1000');
    assert.equal(full.headers.get('warning'), null);
    assert.equal(((await full.json()) as unknown[]).length, 150);

    assert.deepEqual(await json('/studies?PatientID=NOBODY'), []);
    assert.deepEqual(await json('/studies/1.2.3.999/series'), []);
    assert.deepEqual(await json('/studies/1.2.3.999/series/1.2.3.999.1/instances'), []);
    assert.equal((await json('/studies?SomethingOHIFSends=1&_=123')).length, 150);
  });

  it('SQL-injection-looking values match nothing (no 500)', async () => {
    for (const q of [
      `PatientName=${encodeURIComponent("x' OR '1'='1")}`,
      `PatientID=${encodeURIComponent('1; DROP TABLE studies; --')}`,
      `StudyInstanceUID=${encodeURIComponent("1' OR 1=1 --")}`,
      `AccessionNumber=${encodeURIComponent('%')}`,
      `00100020=${encodeURIComponent('")--')}`,
    ]) {
      assert.deepEqual(await json(`/studies?${q}`), [], q);
    }
    assert.equal((await json('/studies')).length, 150);
  });

  it('400 for bad limit/offset, malformed UIDs and values; 406 for other media types', async () => {
    for (const p of [
      '/studies?limit=-1',
      '/studies?limit=abc',
      '/studies?offset=-5',
      '/studies?fuzzymatching=maybe',
      '/studies?StudyDate=yesterday',
      '/studies/not-a-uid/series',
      `/studies/${s0.studyInstanceUid}/series/1..2/instances`,
    ]) {
      const res = await get(p);
      assert.equal(res.status, 400, p);
      const body = (await res.json()) as { error: { code: string } };
      assert.ok(body.error.code, p);
    }
    assert.equal((await get('/studies', { accept: 'application/xml' })).status, 406);
    const plain = await get('/studies?limit=1', { accept: 'application/json' });
    assert.equal(plain.status, 200);
    assert.match(plain.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal((await get('/studies?limit=1', { accept: '*/*' })).status, 200);
  });

  it('401 without a token; audited as dicomweb.qido with free-text query values masked', async () => {
    const anon = await fetch(`${url}/dicom-web/studies`);
    assert.equal(anon.status, 401);
    await json(`/studies/${s0.studyInstanceUid}/series?SeriesDescription=${encodeURIComponent('secret*')}`);
    await node.audit.flush();
    const rows = (await node.db('audit_logs').where({ action: 'dicomweb.qido' }).orderBy('id')) as Array<{
      status: number;
      outcome: string;
      study_instance_uid: string | null;
      details: string | null;
    }>;
    assert.ok(rows.some((r) => r.status === 401));
    const scoped = rows.filter((r) => r.study_instance_uid === s0.studyInstanceUid && r.status === 200);
    assert.ok(scoped.length >= 1);
    const details = JSON.parse(scoped[scoped.length - 1]!.details ?? '{}') as Record<string, unknown>;
    assert.equal(details.level, 'series');
    assert.equal(details.count, 0);
    assert.ok(!JSON.stringify(rows).includes('secret'));
    // The row names the patient whose study was searched (issue 13), never the free text sent.
    assert.equal((scoped[scoped.length - 1] as unknown as { patient_id: string }).patient_id, s0.patientId);
    assert.deepEqual(details.query, { SeriesDescription: '(masked)' });
  });

  it('sequence keys: {sequence}.{item} by tags and keywords; the sequence comes back', async () => {
    const rp = 'RP007';
    const expected = studies
      .flatMap((st) =>
        st.series.filter((se) => se.requestAttributes.some((a) => a.RequestedProcedureID === rp)).map((se) => se.seriesInstanceUid),
      )
      .sort();
    assert.ok(expected.length > 0);
    for (const key of ['00400275.00401001', 'RequestAttributesSequence.RequestedProcedureID']) {
      const rows = await json(`/series?${key}=${rp}&limit=10000`);
      assert.deepEqual(uidsOf(rows, '0020000E').sort(), expected, key);
      for (const r of rows) {
        const items = (r['00400275']?.Value ?? []) as Dataset[];
        assert.equal(r['00400275']?.vr, 'SQ');
        assert.ok(
          items.some((i) => i['00401001']?.Value?.[0] === rp),
          JSON.stringify(r['00400275']),
        );
      }
    }
    // Tag and keyword spellings of one key form one list.
    const both = await json(`/series?00400275.00401001=RP007&RequestAttributesSequence.RequestedProcedureID=RP008&limit=10000`);
    assert.ok(both.length > expected.length);

    const code = await json('/studies?ProcedureCodeSequence.CodeValue=CT*&includefield=00081032&limit=1000');
    const want = studies
      .filter((st) => st.procedureCodes.some((c) => c.CodeValue.startsWith('CT')))
      .map((st) => st.studyInstanceUid)
      .sort();
    assert.deepEqual(uidsOf(code, '0020000D').sort(), want);
    const first = studies.find((st) => st.studyInstanceUid === uidsOf(code, '0020000D')[0])!;
    assert.deepEqual(code[0]!['00081032'], {
      vr: 'SQ',
      Value: first.procedureCodes.map((c) => ({
        '00080100': { vr: 'SH', Value: [c.CodeValue] },
        '00080102': { vr: 'SH', Value: [c.CodingSchemeDesignator] },
        ...(c.CodeMeaning ? { '00080104': { vr: 'LO', Value: [c.CodeMeaning] } } : {}),
      })),
    });
    // An unindexed sequence key is ignored, like any unknown key.
    assert.equal((await json('/studies?ReferencedStudySequence.ReferencedSOPInstanceUID=1.2.3&limit=1000')).length, 150);
    // A value on the sequence itself is malformed.
    assert.equal((await get('/studies?ProcedureCodeSequence=CTCHEST')).status, 400);
  });

  it('sequence items come from ingest (STOW-RS) and go with a DICOMweb DELETE', async () => {
    const admin = bearer(await tokenFor(node, 'admin'));
    const files = makeCtSeries({
      slices: 2,
      patient: { id: 'SEQ-INGEST', name: 'Sequence^Ingest' },
      requestAttributes: [
        { RequestedProcedureID: 'RPINGEST', ScheduledProcedureStepID: 'SPSINGEST', AccessionNumber: 'ACCINGEST' },
        { RequestedProcedureID: 'RPINGEST2' },
      ],
      procedureCodes: [{ CodeValue: 'CTABD', CodingSchemeDesignator: '99TEST', CodeMeaning: 'CT Abdomen' }],
    });
    const stow = await fetch(`${url}/dicom-web/studies`, {
      method: 'POST',
      headers: { ...admin, 'content-type': stowContentType(), accept: 'application/dicom+json' },
      body: multipartBody(files.map((f) => f.bytes)),
    });
    assert.equal(stow.status, 200, await stow.clone().text());
    const study = files[0]!.studyInstanceUid;
    const series = files[0]!.seriesInstanceUid;

    const rows = await json('/series?RequestAttributesSequence.ScheduledProcedureStepID=SPSINGEST');
    assert.deepEqual(uidsOf(rows, '0020000E'), [series]);
    assert.deepEqual(rows[0]!['00400275'], {
      vr: 'SQ',
      Value: [
        {
          '00080050': { vr: 'SH', Value: ['ACCINGEST'] },
          '00400009': { vr: 'SH', Value: ['SPSINGEST'] },
          '00401001': { vr: 'SH', Value: ['RPINGEST'] },
        },
        { '00401001': { vr: 'SH', Value: ['RPINGEST2'] } },
      ],
    });
    assert.deepEqual(uidsOf(await json('/studies?00081032.00080100=CTABD'), '0020000D'), [study]);
    // Same item required: RPINGEST2's item has no SPS.
    assert.deepEqual(await json('/series?00400275.00401001=RPINGEST2&00400275.00400009=SPSINGEST'), []);

    const del = await fetch(`${url}/dicom-web/studies/${study}/series/${series}`, { method: 'DELETE', headers: admin });
    assert.equal(del.status, 204);
    assert.deepEqual(await json('/series?RequestAttributesSequence.RequestedProcedureID=RPINGEST'), []);
    assert.deepEqual(await json('/studies?00081032.00080100=CTABD'), []);
    const left = (await node
      .db('sequence_items')
      .whereIn('value', ['RPINGEST', 'RPINGEST2', 'SPSINGEST', 'CTABD'])
      .count({ n: '*' })) as Array<{ n: number | string }>;
    assert.equal(Number(left[0]!.n), 0);
  });
});

describe('QIDO-RS strict mode (QIDO_STRICT=true)', function () {
  this.timeout(60_000);
  let node: TestNode;
  let token: string;

  before(async () => {
    node = await startTestNode({ QIDO_STRICT: 'true' });
    token = await tokenFor(node, 'viewer');
  });
  after(async () => {
    await node?.cleanup();
  });

  it('answers 400 to an unknown query key, and 200 to known ones', async () => {
    const unknown = await fetch(`${baseUrl(node)}/dicom-web/studies?NotAnAttribute=1`, { headers: bearer(token) });
    assert.equal(unknown.status, 400);
    const known = await fetch(`${baseUrl(node)}/dicom-web/studies?PatientID=X&limit=5`, { headers: bearer(token) });
    assert.equal(known.status, 200);
    assert.deepEqual(await known.json(), []);
  });

  it('answers 400 to a key on an unindexed sequence, and 200 to an indexed one', async () => {
    const get = (q: string) => fetch(`${baseUrl(node)}/dicom-web/${q}`, { headers: bearer(token) });
    for (const q of [
      'studies?ReferencedStudySequence.ReferencedSOPInstanceUID=1.2',
      'studies?00081110.00081155=1.2',
      'studies?RequestAttributesSequence.RequestedProcedureDescription=X',
      'studies?RequestAttributesSequence.RequestedProcedureID=RP1',
    ]) {
      assert.equal((await get(q)).status, 400, q);
    }
    for (const q of [
      'series?00400275.00401001=RP1',
      'series?RequestAttributesSequence.ScheduledProcedureStepID=S*',
      'studies?ProcedureCodeSequence.CodeValue=X&includefield=ProcedureCodeSequence',
    ]) {
      const res = await get(q);
      assert.equal(res.status, 200, q);
      assert.deepEqual(await res.json(), []);
    }
  });
});
