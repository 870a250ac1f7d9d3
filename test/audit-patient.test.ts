import { expect } from 'chai';
import { makeCtSeries } from '../fixtures/generate.js';
import { ingestFiles, auditRows } from './helpers/api.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';

/**
 * Audit rows name the patient (PS3.15 A.5: the Participant Object of a patient): any row that
 * names a study gets the study's Patient ID, whichever part of the node wrote it.
 */
describe('audit rows name the patient of the study they name', function () {
  this.timeout(60_000);
  let node: TestNode;
  const files = makeCtSeries({ slices: 2, size: 16, patient: { id: 'AUD-PAT-7' } });
  const study = files[0]!.studyInstanceUid;

  before(async () => {
    node = await startTestNode();
    await ingestFiles(node, files);
  });
  after(async () => node?.cleanup());

  it('fills patient_id from the study for rows written without one (reports, analyses, HTTP reads)', async () => {
    await node.audit.record({ actorType: 'user', actor: 'r1', action: 'report.edited', studyInstanceUid: study, outcome: 'success' });
    await node.audit.record({ actorType: 'user', actor: 'r1', action: 'report.edited', studyInstanceUid: '1.2.3.999', outcome: 'failure' });
    const rows = await auditRows(node, 'report.edited');
    expect(rows.map((r) => r.patient_id)).to.deep.equal(['AUD-PAT-7', null]);

    const token = await tokenFor(node, 'viewer');
    const res = await fetch(`${baseUrl(node)}/dicom-web/studies/${study}/metadata`, { headers: bearer(token) });
    expect(res.status).to.equal(200);
    await node.audit.flush();
    const reads = (await node.db('audit_logs').where({ study_instance_uid: study }).whereNot({ action: 'report.edited' })) as Array<{
      patient_id: string | null;
    }>;
    expect(reads.length).to.be.greaterThan(0);
    for (const r of reads) expect(r.patient_id).to.equal('AUD-PAT-7');
  });

  it('keeps a patient given by the caller', async () => {
    await node.audit.record({
      actorType: 'system',
      action: 'test.explicit',
      studyInstanceUid: study,
      patientId: 'OTHER-1',
      outcome: 'success',
    });
    expect((await auditRows(node, 'test.explicit'))[0]!.patient_id).to.equal('OTHER-1');
  });
});
