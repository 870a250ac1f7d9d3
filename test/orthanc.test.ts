import { expect } from 'chai';
import { createRemoteNode } from '../src/catalog/remote-nodes.js';
import { createRule } from '../src/forwarding/rules.js';
import { corpusDir } from './helpers/corpus.js';
import { storescu } from './helpers/dcmtk.js';
import { bearer, baseUrl, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { startOrthanc, type TestOrthanc } from './helpers/orthanc.js';

/**
 * Orthanc 1.10 (Debian package) as the PACS beside the node: Orthanc's C-FIND against the node
 * answers what QIDO-RS answers, Orthanc C-MOVEs a study from the node onto itself, and the node
 * forwards a study to Orthanc by rule over C-STORE.
 */
describe('interoperability with Orthanc (a real PACS)', function () {
  this.timeout(240_000);
  let node: TestNode;
  let orthanc: TestOrthanc;
  let token: string;
  let ctStudy = '';
  let mrStudy = '';

  before(async () => {
    node = await startTestNode({ FORWARD_SETTLE_MS: '200', FORWARD_POLL_MS: '300' });
    orthanc = await startOrthanc({ radiant: { aeTitle: node.config.dicom.aeTitle, port: node.dicomPort } });
    await createRemoteNode(node.db, {
      aeTitle: orthanc.aeTitle,
      host: '127.0.0.1',
      port: orthanc.dicomPort,
      tls: false,
      description: 'Orthanc under test',
      allowQueryRetrieve: true,
      stowUrl: null,
      stowAuthorization: null,
    });
    token = await tokenFor(node, 'viewer');
    for (const f of corpusDir('ct-series-chest-99'))
      ctStudy = (await node.ingestor.ingestFile(f.absPath, false, { source: 'import' })).studyInstanceUid;
  });
  after(async () => {
    await orthanc?.stop();
    await node?.cleanup();
  });

  it("Orthanc's C-FIND (study and series level) returns what QIDO-RS returns", async () => {
    const qido = (await (
      await fetch(`${baseUrl(node)}/dicom-web/studies?includefield=00081030`, { headers: bearer(token) })
    ).json()) as Array<Record<string, { Value?: unknown[] }>>;
    const answers = await orthanc
      .rest<Array<{ '0020,000d'?: { Value: string } } & Record<string, { Value: string }>>>('POST', '/modalities/radiant/query', {
        Level: 'Study',
        Query: { StudyInstanceUID: '', PatientName: '', StudyDescription: '' },
        Normalize: false,
      })
      .then(async (q) =>
        orthanc.rest<Array<Record<string, { Name: string; Value: string }>>>(
          'GET',
          `/queries/${(q as unknown as { ID: string }).ID}/answers?expand&simplify`,
        ),
      );
    const uids = answers.map((a) => (a as unknown as Record<string, string>).StudyInstanceUID).sort();
    expect(uids).to.deep.equal(qido.map((s) => String(s['0020000D']!.Value![0])).sort());
    const desc = (answers[0] as unknown as Record<string, string>).StudyDescription;
    expect(desc).to.equal(String(qido[0]!['00081030']?.Value?.[0] ?? ''));

    const q2 = await orthanc.rest<{ ID: string }>('POST', '/modalities/radiant/query', {
      Level: 'Series',
      Query: { StudyInstanceUID: ctStudy, SeriesInstanceUID: '', Modality: '', NumberOfSeriesRelatedInstances: '' },
    });
    const series = await orthanc.rest<Array<Record<string, string>>>('GET', `/queries/${q2.ID}/answers?expand&simplify`);
    expect(series).to.have.length(1);
    expect(series[0]).to.include({ Modality: 'CT', NumberOfSeriesRelatedInstances: '99' });
  });

  it('Orthanc C-MOVEs the CT study from the node onto itself', async () => {
    const started = Date.now();
    await orthanc.rest('POST', '/modalities/radiant/move', {
      Level: 'Study',
      Resources: [{ StudyInstanceUID: ctStudy }],
      TargetAet: orthanc.aeTitle,
      Synchronous: true,
    });
    const studies = await orthanc.rest<string[]>('GET', '/studies');
    expect(studies).to.have.length(1);
    const instances = await orthanc.rest<unknown[]>('GET', `/studies/${studies[0]}/instances`);
    expect(instances).to.have.length(99);
    const study = await orthanc.rest<{ MainDicomTags: Record<string, string> }>('GET', `/studies/${studies[0]}`);
    expect(study.MainDicomTags.StudyInstanceUID).to.equal(ctStudy);
    console.log(`      Orthanc C-MOVE of 99 CT instances from the node: ${Date.now() - started} ms`);
  });

  it('forwards a study to Orthanc by rule (C-STORE)', async () => {
    const orthancNode = (await node.db('remote_nodes').where({ ae_title: orthanc.aeTitle }).first()) as { id: number };
    await createRule(node.db, { name: 'MR to Orthanc', enabled: true, nodeId: orthancNode.id, match: { modalities: ['MR'] } });
    await node.forwardingRules.reload();
    const mr = corpusDir('mr-series-brain-sag-192')
      .slice(0, 10)
      .map((e) => e.absPath);
    const sent = await storescu(node.dicomPort, mr);
    expect(sent.code, sent.output).to.equal(0);
    mrStudy = (await node.db('studies').whereNot({ study_instance_uid: ctStudy }).first()).study_instance_uid;
    const deadline = Date.now() + 60_000;
    let count = 0;
    while (Date.now() < deadline) {
      const studies = await orthanc.rest<Array<{ ID: string; MainDicomTags: Record<string, string> }>>('GET', '/studies?expand');
      const found = studies.find((st) => st.MainDicomTags.StudyInstanceUID === mrStudy);
      if (found) {
        count = (await orthanc.rest<unknown[]>('GET', `/studies/${found.ID}/instances`)).length;
        if (count === mr.length) break;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(count).to.equal(mr.length);
    const items = await node.db('forward_items').where({ study_instance_uid: mrStudy });
    expect(items.every((i: { status: string }) => i.status === 'sent')).to.equal(true);
    expect((await node.db('audit_logs').where({ action: 'forward.send' })).length).to.be.greaterThan(0);
    const admin = await tokenFor(node, 'admin');
    const fw = (await (await fetch(`${baseUrl(node)}/api/forwarding?study=${mrStudy}`, { headers: bearer(admin) })).json()) as {
      total: number;
    };
    expect(fw.total).to.equal(mr.length);
  });
});
