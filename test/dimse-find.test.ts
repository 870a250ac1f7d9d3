import assert from 'node:assert/strict';
import net from 'node:net';
import { PATIENT_ROOT_FIND, STUDY_ROOT_FIND } from '../dimse/find.js';
import { clientFind, findscu, type FindAnswer } from './helpers/dimse-client.js';
import dimse from 'dcmjs-dimse';
import { runTool } from './helpers/dcmtk.js';
import { rawFind } from './helpers/raw-find.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';
import { generateStudies, populateIndex, type GenStudy } from './helpers/query-index.js';

/**
 * C-FIND SCP against real peers (DCMTK findscu, a dcmjs-dimse Client) on both databases: each
 * query's answers equal QIDO-RS's answers for the same query on the same node.
 */

type JsonDataset = Record<string, { vr: string; Value?: unknown[] }>;

/** A DICOM JSON value as findscu prints it: `\` between values, PN by its groups. */
function jsonValue(a: { vr: string; Value?: unknown[] } | undefined): string {
  if (!a?.Value) return '';
  return a.Value.map((v) => {
    if (v && typeof v === 'object') {
      const pn = v as { Alphabetic?: string; Ideographic?: string; Phonetic?: string };
      return [pn.Alphabetic ?? '', pn.Ideographic, pn.Phonetic].filter((x) => x !== undefined).join('=');
    }
    return String(v);
  }).join('\\');
}

/** `0020000D` → `0020,000d` (findscu's spelling). */
const dcmtkTag = (t: string) => `${t.slice(0, 4)},${t.slice(4)}`.toLowerCase();

/** An item or sub-item of an association PDU (PS3.8 9.3.2): type, reserved, 2-byte length, value. */
const pduItem = (type: number, value: Buffer) => Buffer.concat([Buffer.from([type, 0, value.length >> 8, value.length & 0xff]), value]);
const ae = (s: string) => Buffer.from(s.padEnd(16), 'latin1');

/**
 * Proposes Study Root FIND with SOP Class Extended Negotiation asking for relational queries
 * (PS3.4 D.3.3.5 / C.5.1.1.1: byte 1 = 1) and returns the answer's PDU type and the sub-item
 * types of its User Information item, then releases.
 */
async function associateAskingRelational(port: number): Promise<{ pduType: number; accepted: boolean; userItems: number[] }> {
  const uid = (s: string) => Buffer.from(s, 'latin1');
  const pc = pduItem(
    0x20,
    Buffer.concat([Buffer.from([1, 0, 0, 0]), pduItem(0x30, uid(STUDY_ROOT_FIND)), pduItem(0x40, uid('1.2.840.10008.1.2'))]),
  );
  const extNeg = Buffer.concat([Buffer.from([0, STUDY_ROOT_FIND.length]), uid(STUDY_ROOT_FIND), Buffer.from([1])]);
  const user = pduItem(
    0x50,
    Buffer.concat([pduItem(0x51, Buffer.from([0, 0, 0x40, 0])), pduItem(0x52, uid('1.2.3.4.5.6')), pduItem(0x56, extNeg)]),
  );
  const body = Buffer.concat([
    Buffer.from([0, 1, 0, 0]),
    ae('RADIANT'),
    ae('TESTSCU'),
    Buffer.alloc(32),
    pduItem(0x10, uid('1.2.840.10008.3.1.1.1')),
    pc,
    user,
  ]);
  const header = Buffer.alloc(6);
  header[0] = 0x01;
  header.writeUInt32BE(body.length, 2);
  const socket = net.connect(port, '127.0.0.1');
  let got = Buffer.alloc(0);
  const pdu = () =>
    new Promise<Buffer>((resolve, reject) => {
      const check = () => {
        if (got.length >= 6 && got.length >= 6 + got.readUInt32BE(2)) {
          const one = got.subarray(0, 6 + got.readUInt32BE(2));
          got = got.subarray(one.length);
          socket.off('data', onData);
          resolve(one);
        }
      };
      const onData = (d: Buffer) => {
        got = Buffer.concat([got, d]);
        check();
      };
      socket.on('data', onData);
      socket.once('error', reject);
      check();
    });
  socket.write(Buffer.concat([header, body]));
  const ac = await pdu();
  const userItems: number[] = [];
  let accepted = false;
  for (let at = 74; ac[0] === 0x02 && at + 4 <= ac.length; ) {
    const type = ac[at]!;
    const len = ac.readUInt16BE(at + 2);
    if (type === 0x21) accepted = ac[at + 6] === 0;
    if (type === 0x50) for (let u = at + 4; u + 4 <= at + 4 + len; u += 4 + ac.readUInt16BE(u + 2)) userItems.push(ac[u]!);
    at += 4 + len;
  }
  socket.write(Buffer.from([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]));
  await pdu().catch(() => undefined);
  socket.destroy();
  return { pduType: ac[0]!, accepted, userItems };
}

onBothDatabases((dbName, env) => {
  describe(`C-FIND SCP (${dbName})`, function () {
    this.timeout(180_000);
    let node: TestNode;
    let auth: Record<string, string>;
    const studies: GenStudy[] = generateStudies(120, 11);
    const s0 = studies[0]!;
    const s0series = s0.series[0]!;

    before(async () => {
      node = await startTestNode(await env());
      await populateIndex(node.db, studies);
      auth = bearer(await tokenFor(node, 'viewer'));
    });
    after(async () => node?.cleanup());

    const qido = async (path: string): Promise<JsonDataset[]> => {
      const res = await fetch(`${baseUrl(node)}/dicom-web${path}`, { headers: { accept: 'application/dicom+json', ...auth } });
      assert.equal(res.status, 200, `${path}: ${res.status}`);
      return (await res.json()) as JsonDataset[];
    };

    /** findscu's answers, the requested tags of each, sorted by the given unique key. */
    const answersOf = (answers: FindAnswer[], tags: string[], key: string) =>
      answers
        .map((a) => Object.fromEntries(tags.map((t) => [dcmtkTag(t), a.elements[dcmtkTag(t)] ?? '<absent>'])))
        .sort((a, b) => (a[dcmtkTag(key)]! < b[dcmtkTag(key)]! ? -1 : 1));
    const qidoAnswers = (rows: JsonDataset[], tags: string[], key: string) =>
      rows
        .map((r) => Object.fromEntries(tags.map((t) => [dcmtkTag(t), jsonValue(r[t])])))
        .sort((a, b) => (a[dcmtkTag(key)]! < b[dcmtkTag(key)]! ? -1 : 1));

    /** Runs the same query over findscu and QIDO-RS and compares the answers attribute by attribute. */
    async function sameAsQido(opts: {
      model: '-S' | '-P';
      level: string;
      keys: Record<string, string>;
      tags: Record<string, string>;
      qidoPath: string;
      key: string;
      expectCount?: number;
    }): Promise<FindAnswer[]> {
      const args = [opts.model, '-k', `QueryRetrieveLevel=${opts.level}`];
      for (const [k, v] of Object.entries(opts.keys)) args.push('-k', v === '' ? k : `${k}=${v}`);
      const r = await findscu(node.dicomPort, args);
      assert.equal(r.tool.code, 0, r.tool.output.slice(-2000));
      assert.equal(r.final, 'Success', r.tool.output.slice(-1000));
      for (const a of r.answers) {
        assert.equal(a.status, 'Pending');
        assert.equal(a.elements['0008,0052'], opts.level);
        assert.equal(a.elements['0008,0054'], 'RADIANT');
        assert.equal(a.elements['0008,0005'], 'ISO_IR 192');
        // Only the requested keys (plus the three the SCP adds).
        const extra = Object.keys(a.elements).filter(
          (t) => !['0008,0052', '0008,0054', '0008,0005'].includes(t) && !Object.values(opts.tags).map(dcmtkTag).includes(t),
        );
        assert.deepEqual(extra, []);
      }
      const tags = Object.values(opts.tags);
      const fromQido = qidoAnswers(await qido(opts.qidoPath), tags, opts.key);
      assert.deepEqual(answersOf(r.answers, tags, opts.key), fromQido);
      if (opts.expectCount !== undefined) assert.equal(r.answers.length, opts.expectCount);
      assert.ok(r.answers.length > 0, 'the query matches something');
      return r.answers;
    }

    it('Study Root, STUDY: PN wildcard, case-insensitive, equals QIDO-RS', async () => {
      const initial = s0.patientName.slice(0, 1).toLowerCase();
      const expected = studies.filter((s) => s.patientName.toUpperCase().startsWith(initial.toUpperCase())).length;
      await sameAsQido({
        model: '-S',
        level: 'STUDY',
        keys: {
          PatientName: `${initial}*`,
          StudyInstanceUID: '',
          StudyDate: '',
          ModalitiesInStudy: '',
          NumberOfStudyRelatedInstances: '',
          PatientID: '',
        },
        tags: {
          PatientName: '00100010',
          StudyInstanceUID: '0020000D',
          StudyDate: '00080020',
          ModalitiesInStudy: '00080061',
          n: '00201208',
          PatientID: '00100020',
        },
        qidoPath: `/studies?PatientName=${encodeURIComponent(`${initial}*`)}`,
        key: '0020000D',
        expectCount: expected,
      });
    });

    it('Study Root, STUDY: date range and ? wildcard, equals QIDO-RS', async () => {
      const expected = studies.filter((s) => s.studyDate >= '20150101' && s.studyDate <= '20181231').length;
      await sameAsQido({
        model: '-S',
        level: 'STUDY',
        keys: { StudyDate: '20150101-20181231', StudyInstanceUID: '', AccessionNumber: '', StudyTime: '' },
        tags: { StudyDate: '00080020', StudyInstanceUID: '0020000D', AccessionNumber: '00080050', StudyTime: '00080030' },
        qidoPath: '/studies?StudyDate=20150101-20181231',
        key: '0020000D',
        expectCount: expected,
      });
      await sameAsQido({
        model: '-S',
        level: 'STUDY',
        keys: { PatientID: 'PID0000?', StudyInstanceUID: '' },
        tags: { PatientID: '00100020', StudyInstanceUID: '0020000D' },
        qidoPath: '/studies?PatientID=PID0000%3F',
        key: '0020000D',
      });
    });

    it('Study Root, STUDY: UID list and ModalitiesInStudy list, equals QIDO-RS', async () => {
      const uids = studies.slice(3, 7).map((s) => s.studyInstanceUid);
      await sameAsQido({
        model: '-S',
        level: 'STUDY',
        keys: { StudyInstanceUID: uids.join('\\'), PatientName: '' },
        tags: { StudyInstanceUID: '0020000D', PatientName: '00100010' },
        qidoPath: `/studies?StudyInstanceUID=${encodeURIComponent(uids.join('\\'))}`,
        key: '0020000D',
        expectCount: 4,
      });
      await sameAsQido({
        model: '-S',
        level: 'STUDY',
        keys: { ModalitiesInStudy: 'CT\\SR', StudyInstanceUID: '' },
        tags: { ModalitiesInStudy: '00080061', StudyInstanceUID: '0020000D' },
        qidoPath: `/studies?ModalitiesInStudy=${encodeURIComponent('CT\\SR')}`,
        key: '0020000D',
        expectCount: studies.filter((s) => s.modalities.includes('CT') || s.modalities.includes('SR')).length,
      });
    });

    it('Study Root, SERIES and IMAGE under their unique keys, equal QIDO-RS', async () => {
      await sameAsQido({
        model: '-S',
        level: 'SERIES',
        keys: {
          StudyInstanceUID: s0.studyInstanceUid,
          SeriesInstanceUID: '',
          Modality: '',
          SeriesNumber: '',
          NumberOfSeriesRelatedInstances: '',
        },
        tags: {
          StudyInstanceUID: '0020000D',
          SeriesInstanceUID: '0020000E',
          Modality: '00080060',
          SeriesNumber: '00200011',
          n: '00201209',
        },
        qidoPath: `/studies/${s0.studyInstanceUid}/series`,
        key: '0020000E',
        expectCount: s0.series.length,
      });
      const sops = s0series.instances.map((i) => i.sopInstanceUid);
      await sameAsQido({
        model: '-S',
        level: 'IMAGE',
        keys: {
          StudyInstanceUID: s0.studyInstanceUid,
          SeriesInstanceUID: s0series.seriesInstanceUid,
          SOPInstanceUID: sops.join('\\'),
          InstanceNumber: '',
          Rows: '',
        },
        tags: { SOPInstanceUID: '00080018', InstanceNumber: '00200013', Rows: '00280010', st: '0020000D', se: '0020000E' },
        qidoPath: `/studies/${s0.studyInstanceUid}/series/${s0series.seriesInstanceUid}/instances?SOPInstanceUID=${encodeURIComponent(sops.join('\\'))}`,
        key: '00080018',
        expectCount: sops.length,
      });
      // findscu prints well-known UIDs by name: SOP Class UID checked over a dcmjs-dimse Client.
      const viaClient = await clientFind(node.dicomPort, STUDY_ROOT_FIND, {
        QueryRetrieveLevel: 'IMAGE',
        StudyInstanceUID: s0.studyInstanceUid,
        SeriesInstanceUID: s0series.seriesInstanceUid,
        SOPClassUID: '',
        SOPInstanceUID: '',
      });
      assert.deepEqual(
        viaClient.filter((x) => x.status === 0xff00).map((x) => [x.elements!.SOPInstanceUID, x.elements!.SOPClassUID]),
        s0series.instances.map((i) => [i.sopInstanceUid, i.sopClassUid]),
      );
      assert.equal(viaClient[viaClient.length - 1]!.status, 0);
    });

    it('Patient Root: PATIENT, STUDY and SERIES levels', async () => {
      // PATIENT level: no QIDO-RS resource; the expected patients come from the generated data.
      const r = await findscu(node.dicomPort, [
        '-P',
        '-k',
        'QueryRetrieveLevel=PATIENT',
        '-k',
        'PatientID=PID0000*',
        '-k',
        'PatientName',
        '-k',
        'PatientSex',
      ]);
      assert.equal(r.final, 'Success', r.tool.output.slice(-1000));
      const expected = new Map(studies.filter((s) => s.patientId.startsWith('PID0000')).map((s) => [s.patientId, s]));
      assert.deepEqual(r.answers.map((a) => a.elements['0010,0020']).sort(), [...expected.keys()].sort());
      for (const a of r.answers) {
        const s = expected.get(a.elements['0010,0020']!)!;
        assert.equal(a.elements['0010,0010'], s.patientName);
        assert.equal(a.elements['0010,0040'], s.patientSex);
      }
      await sameAsQido({
        model: '-P',
        level: 'STUDY',
        keys: { PatientID: s0.patientId, StudyInstanceUID: '', StudyDate: '', StudyDescription: '' },
        tags: { PatientID: '00100020', StudyInstanceUID: '0020000D', StudyDate: '00080020', StudyDescription: '00081030' },
        qidoPath: `/studies?PatientID=${s0.patientId}`,
        key: '0020000D',
        expectCount: studies.filter((s) => s.patientId === s0.patientId).length,
      });
      await sameAsQido({
        model: '-P',
        level: 'SERIES',
        keys: { PatientID: s0.patientId, StudyInstanceUID: s0.studyInstanceUid, SeriesInstanceUID: '', Modality: s0series.modality },
        tags: { PatientID: '00100020', StudyInstanceUID: '0020000D', SeriesInstanceUID: '0020000E', Modality: '00080060' },
        qidoPath: `/studies/${s0.studyInstanceUid}/series?Modality=${s0series.modality}&includefield=PatientID`,
        key: '0020000E',
        expectCount: s0.series.filter((s) => s.modality === s0series.modality).length,
      });
    });

    it('an unsupported optional key: pending 0xFF01, the key left out', async () => {
      const r = await findscu(node.dicomPort, [
        '-P',
        '-k',
        'QueryRetrieveLevel=PATIENT',
        '-k',
        `PatientID=${s0.patientId}`,
        '-k',
        'NumberOfPatientRelatedStudies',
      ]);
      assert.equal(r.final, 'Success');
      assert.equal(r.answers.length, 1);
      assert.match(r.answers[0]!.status, /WarningUnsupportedOptionalKeys/);
      assert.equal(r.answers[0]!.elements['0020,1200'], undefined);
      // (Not over a dcmjs-dimse 0.3.3 Client: it takes 0xFF01 for a final status and releases.)
    });

    it('a missing unique key: failure 0xA900 with an ErrorComment', async () => {
      const r = await findscu(node.dicomPort, ['-S', '-k', 'QueryRetrieveLevel=SERIES', '-k', 'SeriesInstanceUID']);
      assert.equal(r.answers.length, 0);
      assert.match(r.final ?? '', /DataSetDoesNotMatchSOPClass/);
      // (A wildcard UID cannot be tested from here: dcmjs drops `*` from a UI value when reading.)
      const cases: Array<[string, Record<string, unknown>, number, RegExp]> = [
        [STUDY_ROOT_FIND, { QueryRetrieveLevel: 'SERIES', SeriesInstanceUID: '' }, 0xa900, /StudyInstanceUID/],
        [
          STUDY_ROOT_FIND,
          { QueryRetrieveLevel: 'IMAGE', StudyInstanceUID: s0.studyInstanceUid, SOPInstanceUID: '' },
          0xa900,
          /SeriesInstanceUID/,
        ],
        [
          STUDY_ROOT_FIND,
          { QueryRetrieveLevel: 'SERIES', StudyInstanceUID: ['1.2.3', '1.2.4'], SeriesInstanceUID: '' },
          0xa900,
          /StudyInstanceUID/,
        ],
        [PATIENT_ROOT_FIND, { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: '' }, 0xa900, /PatientID/],
        [STUDY_ROOT_FIND, { QueryRetrieveLevel: 'PATIENT', PatientID: '' }, 0xa900, /PATIENT level is not in the Study Root/],
        [STUDY_ROOT_FIND, { QueryRetrieveLevel: 'FRAME', StudyInstanceUID: '' }, 0xa900, /QueryRetrieveLevel/],
        [STUDY_ROOT_FIND, { StudyInstanceUID: '' }, 0xa900, /QueryRetrieveLevel/],
        [STUDY_ROOT_FIND, { QueryRetrieveLevel: 'STUDY', SeriesInstanceUID: '' }, 0xa900, /below the STUDY level/],
        [STUDY_ROOT_FIND, { QueryRetrieveLevel: 'STUDY', StudyDate: '2020x' }, 0xc000, /DA/],
      ];
      for (const [sop, ids, status, comment] of cases) {
        const responses = await clientFind(node.dicomPort, sop, ids);
        assert.equal(responses.length, 1, JSON.stringify(ids));
        assert.equal(responses[0]!.status, status, JSON.stringify(ids));
        assert.match(responses[0]!.errorComment ?? '', comment);
      }
    });

    it('relational queries are not offered: extended negotiation asking for them gets no sub-item back; hierarchical rules apply', async () => {
      // PS3.7 D.3.3.5: an acceptor that returns no SOP Class Extended Negotiation sub-item has not
      // agreed to relational queries, so the SCU must query hierarchically; the node does just that.
      const r = await associateAskingRelational(node.dicomPort);
      assert.equal(r.pduType, 0x02, 'A-ASSOCIATE-AC');
      assert.equal(r.accepted, true, 'Study Root FIND accepted');
      assert.ok(r.userItems.includes(0x51), `user items ${r.userItems}`);
      assert.ok(!r.userItems.includes(0x56), `no SOP Class Extended Negotiation sub-item: ${r.userItems}`);
      // Hence IMAGE without SeriesInstanceUID and SERIES without StudyInstanceUID are refused with
      // 0xA900 (PS3.4 C.4.1.3.1: hierarchical search needs the unique keys of the levels above).
      const image = await findscu(node.dicomPort, [
        '-S',
        '-k',
        'QueryRetrieveLevel=IMAGE',
        '-k',
        `StudyInstanceUID=${s0.studyInstanceUid}`,
        '-k',
        'SOPInstanceUID',
      ]);
      assert.equal(image.answers.length, 0);
      assert.match(image.final ?? '', /DataSetDoesNotMatchSOPClass/);
      const series = await findscu(node.dicomPort, [
        '-S',
        '-k',
        'QueryRetrieveLevel=SERIES',
        '-k',
        `SeriesInstanceUID=${s0series.seriesInstanceUid}`,
      ]);
      assert.equal(series.answers.length, 0);
      assert.match(series.final ?? '', /DataSetDoesNotMatchSOPClass/);
    });

    it('C-CANCEL stops the stream: Cancel 0xFE00 before all matches were sent', async () => {
      const r = await findscu(node.dicomPort, ['-S', '--cancel', '2', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyInstanceUID']);
      assert.match(r.final ?? '', /^Cancel/, r.tool.output.slice(-800));
      assert.ok(r.answers.length >= 2 && r.answers.length < studies.length, `${r.answers.length} answers`);
    });

    it('all matches of a large result stream as pending responses, the first before the last, in Implicit and Explicit VR', async () => {
      const identifier = (level: string) => [
        { tag: 0x00080052, vr: 'CS', value: level },
        { tag: 0x0020000d, vr: 'UI', value: '' },
        { tag: 0x00100010, vr: 'PN', value: '' },
        { tag: 0x00200010, vr: 'SH', value: '' },
      ];
      const expected = studies.map((s) => s.studyInstanceUid).sort();
      for (const explicitVr of [false, true]) {
        const r = await rawFind(node.dicomPort, STUDY_ROOT_FIND, identifier('STUDY'), { explicitVr, callingAe: 'TESTSCU' });
        assert.equal(r.statuses.at(-1), 0);
        assert.ok(r.statuses.slice(0, -1).every((s) => s === 0xff00));
        assert.equal(r.identifiers.length, studies.length);
        // 120 matches come in pages: the first page's answers are out before the next is read.
        assert.ok(r.firstMs < r.totalMs, `first ${r.firstMs} ms, final ${r.totalMs} ms`);
        const ts = explicitVr ? '1.2.840.10008.1.2.1' : '1.2.840.10008.1.2';
        const uids = r.identifiers.map((b) => String(new dimse.Dataset(b, ts).getElement('StudyInstanceUID'))).sort();
        assert.deepEqual(uids, expected);
        const one = new dimse.Dataset(r.identifiers[0]!, ts).getElements() as Record<string, unknown>;
        assert.equal(one.QueryRetrieveLevel, 'STUDY');
        assert.equal(one.RetrieveAETitle, 'RADIANT');
        assert.equal(one.SpecificCharacterSet, 'ISO_IR 192');
      }
    });

    it('an unknown SOP Class is not negotiated', async () => {
      // Modality Worklist FIND: not offered by the node.
      const r = await runTool('findscu', [
        '-v',
        '-W',
        '-aet',
        'TESTSCU',
        '-aec',
        'RADIANT',
        '-k',
        'PatientName',
        '127.0.0.1',
        String(node.dicomPort),
      ]);
      assert.notEqual(r.code, 0);
      assert.match(r.output, /No Acceptable Presentation Contexts|no presentation context/i);
    });

    it('each C-FIND has one audit row with level, keys and match count, no patient name', async () => {
      await findscu(node.dicomPort, [
        '-S',
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${s0.studyInstanceUid}`,
        '-k',
        `PatientName=${s0.patientName}`,
      ]);
      const rows = (await node.db('audit_logs').where({ action: 'dimse.find' }).orderBy('id', 'desc')) as Array<{
        actor: string;
        details: string;
        outcome: string;
        status: number;
      }>;
      const last = rows[0]!;
      assert.equal(last.actor, 'TESTSCU');
      assert.equal(last.outcome, 'success');
      const details = JSON.parse(last.details) as Record<string, unknown>;
      assert.equal(details.level, 'STUDY');
      assert.equal(details.matches, 1);
      assert.equal(details.model, 'study-root');
      assert.deepEqual(details.values, { StudyInstanceUID: s0.studyInstanceUid, PatientName: '<present>' });
      assert.deepEqual(details.studies, [s0.studyInstanceUid]);
      assert.ok(!JSON.stringify(last).includes(s0.patientName.split('^')[0]!), 'no patient name in the audit row');
      assert.ok(rows.some((r) => r.status === 0xa900 && r.outcome === 'failure'));
      assert.ok(rows.some((r) => r.status === 0xfe00));
    });
  });
});
