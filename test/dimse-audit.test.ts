import fsp from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { makeCtSeries, writeSeries, type GeneratedFile } from '../fixtures/generate.js';
import type { AuditRow } from '../src/audit/audit.js';
import { createRemoteNode } from '../src/catalog/remote-nodes.js';
import { echoscu, runTool, startStorescp, type ReferenceScp } from './helpers/dcmtk.js';
import { findscu } from './helpers/dimse-client.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { freePort, startTestNode, tempDir, type TestNode } from './helpers/node.js';

/**
 * The DIMSE side of the audit trail (PS3.15 A.5: who, what, which patient and study), read back
 * through GET /api/audit as an auditor would: association rows name the patients stored, C-FIND
 * rows their level, keys (names masked) and what they returned, C-GET/C-MOVE rows the studies and
 * patients retrieved, and every rejected association has a row with its reason.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DIMSE audit rows', function () {
  this.timeout(120_000);
  let node: TestNode;
  let admin: Record<string, string>;
  let dir: string;
  let dest: ReferenceScp;
  let destDir: string;
  const patientA = { id: 'PID-AUD-A', name: 'Auditson^Alice' };
  const patientB = { id: 'PID-AUD-B', name: 'Auditson^Bob' };
  const a1 = makeCtSeries({ patient: patientA, accessionNumber: 'AUDA1', slices: 3 });
  const a2 = makeCtSeries({ patient: patientA, accessionNumber: 'AUDA2', slices: 2 });
  const b1 = makeCtSeries({ patient: patientB, accessionNumber: 'AUDB1', slices: 2 });
  const studyOf = (s: GeneratedFile[]) => s[0]!.studyInstanceUid;

  /** Rows of one action, newest first, once `count` of them (matching `where`) are there. */
  async function audit(action: string, where: (r: AuditRow) => boolean = () => true, count = 1): Promise<AuditRow[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await fetch(`${baseUrl(node)}/api/audit?action=${encodeURIComponent(action)}&limit=1000`, { headers: admin });
      expect(res.status).to.equal(200);
      const rows = ((await res.json()) as { items: AuditRow[] }).items.filter(where);
      if (rows.length >= count) return rows;
      if (Date.now() > deadline) throw new Error(`${count} ${action} audit row(s) expected, ${rows.length} found`);
      await sleep(100);
    }
  }

  before(async () => {
    node = await startTestNode();
    admin = bearer(await tokenFor(node, 'admin'));
    dir = await tempDir('audit');
    destDir = await tempDir('audit-dest');
    dest = await startStorescp(await freePort(), destDir, { aeTitle: 'AUDDEST' });
    await createRemoteNode(node.db, {
      aeTitle: 'AUDDEST',
      host: '127.0.0.1',
      port: dest.port,
      tls: false,
      description: null,
      allowQueryRetrieve: true,
      stowUrl: null,
    });
  });
  after(async () => {
    await dest?.stop();
    await node?.cleanup();
    for (const d of [dir, destDir]) if (d) await fsp.rm(d, { recursive: true, force: true });
  });

  it('an association row names the patient stored (column when one, bounded list in details)', async () => {
    const files = await writeSeries(path.join(dir, 'a1'), a1);
    const r = await runTool('storescu', ['-aet', 'MODALITY1', '-aec', 'RADIANT', '127.0.0.1', String(node.dicomPort), ...files]);
    expect(r.code, r.output).to.equal(0);
    const [row] = await audit('dimse.association', (x) => x.actor === 'MODALITY1');
    expect(row!.patientId).to.equal(patientA.id);
    expect(row!.studyInstanceUid).to.equal(studyOf(a1));
    expect(row!.details).to.include({ stored: 3, endedBy: 'release' });
    expect(row!.details!.patients).to.deep.equal([patientA.id]);
    expect(JSON.stringify(row)).to.not.include('Auditson');

    // Two patients on one association: no single patient in the column, both in the list.
    const mixed = [...(await writeSeries(path.join(dir, 'a2'), a2)), ...(await writeSeries(path.join(dir, 'b1'), b1))];
    const m = await runTool('storescu', ['-aet', 'MODALITY2', '-aec', 'RADIANT', '127.0.0.1', String(node.dicomPort), ...mixed]);
    expect(m.code, m.output).to.equal(0);
    const [two] = await audit('dimse.association', (x) => x.actor === 'MODALITY2');
    expect(two!.patientId).to.equal(undefined);
    expect(two!.studyInstanceUid).to.equal(undefined);
    expect((two!.details!.patients as string[]).slice().sort()).to.deep.equal([patientA.id, patientB.id]);
    expect((two!.details!.studies as string[]).slice().sort()).to.deep.equal([studyOf(a2), studyOf(b1)].sort());
  });

  it('a C-FIND row has its level, keys and identifier values (names masked) and the studies and patients returned', async () => {
    const r = await findscu(node.dicomPort, [
      '-S',
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `PatientID=${patientA.id}`,
      '-k',
      `PatientName=${patientA.name}`,
      '-k',
      'StudyInstanceUID',
      '-k',
      'AccessionNumber',
    ]);
    expect(r.final).to.equal('Success');
    expect(r.answers).to.have.length(2);
    const [row] = await audit('dimse.find', (x) => x.actor === 'TESTSCU');
    expect(row!.patientId).to.equal(patientA.id);
    // Two studies matched: none in the column, both in the list.
    expect(row!.studyInstanceUid).to.equal(undefined);
    const d = row!.details!;
    expect(d.level).to.equal('STUDY');
    expect(d.keys).to.include.members(['PatientID', 'PatientName', 'StudyInstanceUID', 'AccessionNumber']);
    expect(d.values).to.deep.equal({ PatientID: patientA.id, PatientName: '<present>' });
    expect((d.studies as string[]).slice().sort()).to.deep.equal([studyOf(a1), studyOf(a2)].sort());
    expect(d.patients).to.deep.equal([patientA.id]);
    expect(JSON.stringify(row)).to.not.include('Auditson');

    // PATIENT level (Patient Root): the patients returned, even when PatientID was not asked for.
    const p = await findscu(node.dicomPort, ['-P', '-k', 'QueryRetrieveLevel=PATIENT', '-k', 'PatientName=Auditson*']);
    expect(p.final).to.equal('Success');
    const [prow] = await audit('dimse.find', (x) => x.actor === 'TESTSCU' && x.details?.level === 'PATIENT');
    expect((prow!.details!.patients as string[]).slice().sort()).to.deep.equal([patientA.id, patientB.id]);
    expect(prow!.details!.values).to.deep.equal({ PatientName: '<present>' });
    expect(JSON.stringify(prow)).to.not.include('Auditson');
  });

  it('a C-GET row carries the study and patient retrieved', async () => {
    const out = await tempDir('audit-get');
    try {
      const r = await runTool('getscu', [
        '-S',
        '-aet',
        'GETSCU',
        '-aec',
        'RADIANT',
        '-od',
        out,
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${studyOf(a1)}`,
        '127.0.0.1',
        String(node.dicomPort),
      ]);
      expect(r.code, r.output).to.equal(0);
    } finally {
      await fsp.rm(out, { recursive: true, force: true });
    }
    const [row] = await audit('dimse.get', (x) => x.actor === 'GETSCU');
    expect(row!.studyInstanceUid).to.equal(studyOf(a1));
    expect(row!.patientId).to.equal(patientA.id);
    expect(row!.details).to.include({ level: 'STUDY', matched: 3, completed: 3 });
    expect(row!.details!.studies).to.deep.equal([studyOf(a1)]);
  });

  it('a C-MOVE row carries the studies and patients retrieved; a refused one what was asked for', async () => {
    const r = await runTool('movescu', [
      '-P',
      '-aet',
      'MOVESCU',
      '-aec',
      'RADIANT',
      '-aem',
      'AUDDEST',
      '-k',
      'QueryRetrieveLevel=PATIENT',
      '-k',
      `PatientID=${patientB.id}`,
      '127.0.0.1',
      String(node.dicomPort),
    ]);
    expect(r.code, r.output).to.equal(0);
    const [row] = await audit('dimse.move', (x) => x.actor === 'MOVESCU' && x.outcome === 'success');
    expect(row!.patientId).to.equal(patientB.id);
    expect(row!.studyInstanceUid).to.equal(studyOf(b1));
    expect(row!.details).to.include({ destination: 'AUDDEST', level: 'PATIENT', completed: 2 });

    const refused = await runTool('movescu', [
      '-S',
      '-aet',
      'MOVESCU',
      '-aec',
      'RADIANT',
      '-aem',
      'NOWHERE',
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `StudyInstanceUID=${studyOf(a2)}`,
      '127.0.0.1',
      String(node.dicomPort),
    ]);
    expect(refused.output).to.match(/Move response with error status/);
    const [failed] = await audit('dimse.move', (x) => x.actor === 'MOVESCU' && x.outcome === 'failure');
    expect(failed!.status).to.equal(0xa801);
    expect(failed!.studyInstanceUid).to.equal(studyOf(a2));
    expect(failed!.details).to.include({ destination: 'NOWHERE' });
  });

  it('a rejected association has a row with its reason: called AE not recognised, calling AE not allowed', async () => {
    const wrong = await echoscu(node.dicomPort, 'NOTRADIANT');
    expect(wrong.code).to.not.equal(0);
    const [row] = await audit('dimse.association-rejected', (x) => x.actor === 'TESTSCU');
    expect(row!.outcome).to.equal('failure');
    expect(row!.details).to.include({ reason: 'called-ae', calledAeTitle: 'NOTRADIANT' });

    const closed = await startTestNode({ DICOM_ALLOWED_AES: 'FRIEND' });
    try {
      const denied = await echoscu(closed.dicomPort);
      expect(denied.output).to.match(/Calling AE Title Not Recognized/i);
      const token = bearer(await tokenFor(closed, 'admin'));
      let items: AuditRow[] = [];
      for (let i = 0; i < 100 && !items.length; i++) {
        const res = await fetch(`${baseUrl(closed)}/api/audit?action=dimse.association-rejected`, { headers: token });
        items = ((await res.json()) as { items: AuditRow[] }).items;
        if (!items.length) await sleep(100);
      }
      expect(items).to.have.length(1);
      expect(items[0]!.actor).to.equal('TESTSCU');
      expect(items[0]!.details).to.include({ reason: 'calling-ae' });
    } finally {
      await closed.cleanup();
    }
  });
});
