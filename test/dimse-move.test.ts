import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import dimse from 'dcmjs-dimse';
import { chooseSyntax, outcomeOf, splitPart10 } from '../dimse/store-scu.js';
import { createRemoteNode } from '../src/catalog/remote-nodes.js';
import { corpusDir, corpusRoot } from './helpers/corpus.js';
import { runTool, startReferenceStorescp, startStorescp, type ReferenceScp } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { freePort, startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';

/**
 * C-MOVE and C-GET SCP, the C-STORE/C-ECHO SCU, the calling-AE allowlist and /api/nodes with
 * real peers: DCMTK movescu/getscu/echoscu/storescp and the dcmjs-dimse client.
 */

const { Client } = dimse;
const { CMoveRequest } = dimse.requests;
type CMoveRequestT = InstanceType<typeof CMoveRequest>;
type MoveResponseT = InstanceType<typeof dimse.responses.CMoveResponse>;

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const J2K_LOSSLESS = '1.2.840.10008.1.2.4.90';
const J2K_FILE = path.join(corpusRoot, 'transfer-syntaxes/pydicom/MR_small_jp2klossless.dcm');
/** JPEG Extended (12-bit, .51): stored as received, but the node cannot decode it. */
const JPEG_EXT_FILE = path.join(corpusRoot, 'transfer-syntaxes/pydicom/JPGExtended.dcm');

/** C-MOVE with the dcmjs-dimse client; optionally C-CANCEL on the first pending response. */
function moveWithClient(
  port: number,
  request: CMoveRequestT,
  opts: { cancelOnFirstPending?: boolean; securityOptions?: Record<string, unknown> } = {},
): Promise<MoveResponseT[]> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    const responses: MoveResponseT[] = [];
    let cancelled = false;
    request.on('response', (r: MoveResponseT) => {
      responses.push(r);
      if (opts.cancelOnFirstPending && !cancelled && r.getStatus() === 0xff00) {
        cancelled = true;
        client.cancel(request);
      }
    });
    client.on('associationRejected', (r: unknown) => reject(new Error(`association rejected: ${JSON.stringify(r)}`)));
    client.on('networkError', (e: Error) => reject(e));
    client.on('closed', () => resolve(responses));
    client.addRequest(request);
    client.send('127.0.0.1', port, 'MOVESCU', 'RADIANT', { connectTimeout: 5000, securityOptions: opts.securityOptions });
  });
}

function movescu(port: number, dest: string, keys: string[], model = '-S') {
  return runTool('movescu', [
    '-v',
    model,
    '-aet',
    'MOVESCU',
    '-aec',
    'RADIANT',
    '-aem',
    dest,
    ...keys.flatMap((k) => ['-k', k]),
    '127.0.0.1',
    String(port),
  ]);
}

async function storescpOn(args: string[], ae: string): Promise<{ port: number; dir: string; stop(): Promise<void> }> {
  const dir = await tempDir('dest');
  const scp = await startStorescp(await freePort(), dir, { aeTitle: ae, args });
  return {
    ...scp,
    async stop() {
      await scp.stop();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

function describeRetrieve(dbName: string, env: () => Promise<Record<string, string>>): void {
  describe(`C-MOVE / C-GET SCP and C-STORE SCU (${dbName})`, function () {
    this.timeout(300_000);
    let node: TestNode;
    let dest: ReferenceScp;
    let destDir: string;
    let leOnly: Awaited<ReturnType<typeof storescpOn>>;
    let study: string;
    let j2kStudy: string;
    let j2kSop: string;
    let extSop: string;
    const ct = corpusDir('ct-series-chest-99');

    before(async () => {
      node = await startTestNode(await env());
      for (const e of ct) study = (await node.ingestor.ingestFile(e.absPath, false, { source: 'import' })).studyInstanceUid;
      const j = await node.ingestor.ingestFile(J2K_FILE, false, { source: 'import' });
      j2kStudy = j.studyInstanceUid;
      j2kSop = j.sopInstanceUid;
      extSop = (await node.ingestor.ingestFile(JPEG_EXT_FILE, false, { source: 'import' })).sopInstanceUid;
      destDir = await tempDir('refscp');
      dest = await startReferenceStorescp(await freePort(), destDir);
      // Accepts uncompressed syntaxes only, preferring Explicit VR Little Endian.
      leOnly = await storescpOn(['+xe'], 'LEONLY');
      const admin = await tokenFor(node, 'admin');
      for (const [ae, port] of [
        ['REFSCP', dest.port],
        ['LEONLY', leOnly.port],
      ] as const) {
        const res = await fetch(`${baseUrl(node)}/api/nodes`, {
          method: 'POST',
          headers: { ...bearer(admin), 'content-type': 'application/json' },
          body: JSON.stringify({ ae_title: ae, host: '127.0.0.1', port }),
        });
        expect(res.status).to.equal(201);
      }
      await createRemoteNode(node.db, {
        aeTitle: 'DOWNSCP',
        host: '127.0.0.1',
        port: await freePort(),
        tls: false,
        description: 'nothing listens',
        allowQueryRetrieve: true,
        stowUrl: null,
      });
      await createRemoteNode(node.db, {
        aeTitle: 'NOQR',
        host: '127.0.0.1',
        port: dest.port,
        tls: false,
        description: null,
        allowQueryRetrieve: false,
        stowUrl: null,
      });
    });

    after(async () => {
      await dest?.stop();
      await leOnly?.stop();
      await node?.cleanup();
      if (destDir) await fsp.rm(destDir, { recursive: true, force: true });
    });

    it('movescu moves the whole 99-slice CT study to a DCMTK storescp', async () => {
      const r = await movescu(node.dicomPort, 'REFSCP', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${study}`]);
      expect(r.code, r.output).to.equal(0);
      expect(r.output).to.match(/Received Final Move Response \(Success\)/);
      expect((r.output.match(/Received Move Response \d+ \(Pending\)/g) ?? []).length).to.be.greaterThan(0);
      expect(fs.readdirSync(destDir).filter((f) => f.startsWith('CT.'))).to.have.length(ct.length);
    });

    it('C-MOVE to a destination taking several associations at once sends every sub-operation over more than one, counts exact', async () => {
      // storescp --fork serves each association in its own process; each received file runs a
      // shell that writes its parent's pid (the association's process), so the log counts them.
      const forkDir = await tempDir('forkscp');
      const log = path.join(forkDir, '..', `${path.basename(forkDir)}.log`);
      const fork = await startStorescp(await freePort(), forkDir, { aeTitle: 'FORKSCP', args: ['--fork', '-xcr', `echo $PPID >> ${log}`] });
      try {
        await createRemoteNode(node.db, {
          aeTitle: 'FORKSCP',
          host: '127.0.0.1',
          port: fork.port,
          tls: false,
          description: null,
          allowQueryRetrieve: true,
          stowUrl: null,
        });
        const responses = await moveWithClient(node.dicomPort, CMoveRequest.createStudyMoveRequest('FORKSCP', study));
        const final = responses.at(-1)!;
        expect(final.getStatus()).to.equal(0x0000);
        expect(final.getCompleted()).to.equal(ct.length);
        expect(final.getFailures()).to.equal(0);
        expect(final.getWarnings()).to.equal(0);
        const pending = responses.slice(0, -1);
        expect(pending).to.have.length(ct.length - 1);
        // Each pending response counts one more completed sub-operation, whichever association sent it.
        expect(pending.map((p) => p.getCompleted())).to.deep.equal(pending.map((_, i) => i + 1));
        expect(pending.every((p) => p.getRemaining() + p.getCompleted() === ct.length)).to.equal(true);
        expect(fs.readdirSync(forkDir).filter((f) => f.startsWith('CT.'))).to.have.length(ct.length);
        const deadline = Date.now() + 30_000;
        const lines = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : []);
        while (lines().length < ct.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        expect(lines()).to.have.length(ct.length);
        expect(new Set(lines()).size).to.be.greaterThan(1);
      } finally {
        await fork.stop();
        await fsp.rm(forkDir, { recursive: true, force: true });
        await fsp.rm(log, { force: true });
      }
    });

    it('reports the counts in pending and final responses (study root, series level)', async () => {
      const series = (await node
        .db('series')
        .join('studies', 'studies.id', 'series.study_pk')
        .where('studies.study_instance_uid', study)
        .first('series.series_instance_uid')) as { series_instance_uid: string };
      const req = CMoveRequest.createSeriesMoveRequest('REFSCP', study, series.series_instance_uid);
      const responses = await moveWithClient(node.dicomPort, req);
      const final = responses.at(-1)!;
      expect(final.getStatus()).to.equal(0x0000);
      expect(final.getCompleted()).to.equal(ct.length);
      expect(final.getFailures()).to.equal(0);
      expect(final.getWarnings()).to.equal(0);
      const pending = responses.slice(0, -1);
      expect(pending.length).to.equal(ct.length - 1);
      expect(pending.every((p) => p.getStatus() === 0xff00)).to.equal(true);
      expect(pending[0]!.getRemaining() + pending[0]!.getCompleted()).to.equal(ct.length);
      expect(pending.at(-1)!.getRemaining()).to.equal(1);
    });

    it('patient root, IMAGE level, and nothing matched: success with zero counts', async () => {
      const one = await movescu(
        node.dicomPort,
        'REFSCP',
        ['QueryRetrieveLevel=IMAGE', `StudyInstanceUID=${j2kStudy}`, `SOPInstanceUID=${j2kSop}`, 'PatientID='],
        '-P',
      );
      expect(one.output).to.match(/Received Final Move Response \(Success\)/);
      const req = CMoveRequest.createStudyMoveRequest('REFSCP', '1.2.3.4.5.6.7.8.9');
      const responses = await moveWithClient(node.dicomPort, req);
      expect(responses).to.have.length(1);
      expect(responses[0]!.getStatus()).to.equal(0x0000);
      expect(responses[0]!.getCompleted()).to.equal(0);
      expect(responses[0]!.getFailures()).to.equal(0);
    });

    it('an unknown move destination, or one not allowed to query/retrieve, is refused with 0xA801', async () => {
      for (const ae of ['NOSUCHAE', 'NOQR']) {
        const responses = await moveWithClient(node.dicomPort, CMoveRequest.createStudyMoveRequest(ae, study));
        expect(responses).to.have.length(1);
        expect(responses[0]!.getStatus()).to.equal(0xa801);
      }
      const r = await movescu(node.dicomPort, 'NOSUCHAE', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${study}`]);
      expect(r.output).to.match(/MoveDestinationUnknown/);
    });

    it('an identifier without the unique key of its level is refused with 0xA900', async () => {
      const req = CMoveRequest.createStudyMoveRequest('REFSCP', study);
      req.getDataset()!.setElement('QueryRetrieveLevel', 'SERIES');
      const responses = await moveWithClient(node.dicomPort, req);
      expect(responses).to.have.length(1);
      expect(responses[0]!.getStatus()).to.equal(0xa900);
    });

    it('a destination that is down: every sub-operation failed (0xA702), and the node still answers C-ECHO', async () => {
      const responses = await moveWithClient(node.dicomPort, CMoveRequest.createStudyMoveRequest('DOWNSCP', study));
      const final = responses.at(-1)!;
      expect(final.getStatus()).to.equal(0xa702);
      expect(final.getFailures()).to.equal(ct.length);
      expect(final.getCompleted()).to.equal(0);
      const failedList = final.getDataset()?.getElement('FailedSOPInstanceUIDList') as unknown;
      expect(Array.isArray(failedList) ? failedList.length : failedList ? 1 : 0).to.equal(ct.length);
      const echo = await runTool('echoscu', ['-aet', 'TESTSCU', '-aec', 'RADIANT', '127.0.0.1', String(node.dicomPort)]);
      expect(echo.code, echo.output).to.equal(0);
    });

    it('C-CANCEL stops the move after the current sub-operation (0xFE00)', async () => {
      const responses = await moveWithClient(node.dicomPort, CMoveRequest.createStudyMoveRequest('REFSCP', study), {
        cancelOnFirstPending: true,
      });
      const final = responses.at(-1)!;
      expect(final.getStatus()).to.equal(0xfe00);
      expect(final.getCompleted()).to.be.lessThan(ct.length);
      expect(final.getRemaining()).to.equal(ct.length - final.getCompleted() - final.getFailures() - final.getWarnings());
    });

    it('a destination that accepts only uncompressed syntaxes receives the JPEG 2000 instance transcoded', async () => {
      const stored = (await node.db('instances').where({ sop_instance_uid: j2kSop }).first('transfer_syntax_uid')) as {
        transfer_syntax_uid: string;
      };
      expect(stored.transfer_syntax_uid).to.equal(J2K_LOSSLESS);
      const r = await movescu(node.dicomPort, 'LEONLY', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${j2kStudy}`]);
      expect(r.output).to.match(/Received Final Move Response \(Success\)/);
      const files = fs.readdirSync(leOnly.dir);
      expect(files).to.have.length(1);
      const received = fs.readFileSync(path.join(leOnly.dir, files[0]!));
      expect(splitPart10(received).transferSyntaxUid).to.equal(EXPLICIT_LE);
    });

    it('an instance that cannot be transcoded for the destination fails alone: 0xB000 with the failed UID', async () => {
      const req = CMoveRequest.createStudyMoveRequest('LEONLY', j2kStudy);
      const ds = req.getDataset()!;
      ds.setElement('QueryRetrieveLevel', 'IMAGE');
      ds.setElement('StudyInstanceUID', '');
      ds.setElement('SOPInstanceUID', [j2kSop, extSop] as unknown as string);
      const responses = await moveWithClient(node.dicomPort, req);
      const final = responses.at(-1)!;
      expect(final.getStatus()).to.equal(0xb000);
      expect(final.getCompleted()).to.equal(1);
      expect(final.getFailures()).to.equal(1);
      const failed = final.getDataset()?.getElement('FailedSOPInstanceUIDList') as unknown;
      expect(Array.isArray(failed) ? failed : [failed]).to.deep.equal([extSop]);
    });

    it('getscu retrieves the study onto the caller on the same association (C-GET)', async () => {
      const out = await tempDir('getscu');
      try {
        const r = await runTool('getscu', [
          '-v',
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
          `StudyInstanceUID=${study}`,
          '127.0.0.1',
          String(node.dicomPort),
        ]);
        expect(r.code, r.output).to.equal(0);
        expect(r.output).to.match(/Number of Completed Suboperations\s*:\s*99/);
        expect(r.output).to.match(/Number of Failed Suboperations\s*:\s*0/);
        expect(fs.readdirSync(out)).to.have.length(ct.length);
        // The J2K instance comes back in a syntax getscu accepted (uncompressed).
        const j = await runTool('getscu', [
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
          `StudyInstanceUID=${j2kStudy}`,
          '127.0.0.1',
          String(node.dicomPort),
        ]);
        expect(j.code, j.output).to.equal(0);
        const mr = fs.readdirSync(out).filter((f) => f.startsWith('MR'));
        expect(mr).to.have.length(1);
        expect(splitPart10(fs.readFileSync(path.join(out, mr[0]!))).transferSyntaxUid).to.not.equal(J2K_LOSSLESS);
      } finally {
        await fsp.rm(out, { recursive: true, force: true });
      }
    });

    it('/api/nodes: CRUD, C-ECHO, validation, 403 for a viewer', async () => {
      const admin = bearer(await tokenFor(node, 'admin'));
      const json = { ...admin, 'content-type': 'application/json' };
      const url = `${baseUrl(node)}/api/nodes`;
      const created = await fetch(url, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ ae_title: 'WS1', host: 'localhost', port: 104, description: 'workstation', tls: false }),
      });
      expect(created.status).to.equal(201);
      const ws = (await created.json()) as { id: number; ae_title: string; allow_query_retrieve: boolean };
      expect(ws.ae_title).to.equal('WS1');
      expect(ws.allow_query_retrieve).to.equal(true);
      const dup = await fetch(url, { method: 'POST', headers: json, body: JSON.stringify({ ae_title: 'WS1', host: 'x', port: 104 }) });
      expect(dup.status).to.equal(409);
      for (const bad of [
        { ae_title: 'A'.repeat(17), host: 'x', port: 104 },
        { ae_title: 'BACK\\SLASH', host: 'x', port: 104 },
        { ae_title: 'OK', host: 'x', port: 70000 },
      ]) {
        const res = await fetch(url, { method: 'POST', headers: json, body: JSON.stringify(bad) });
        expect(res.status, JSON.stringify(bad)).to.equal(400);
      }
      const list = (await (await fetch(url, { headers: admin })).json()) as { items: Array<{ ae_title: string }> };
      expect(list.items.map((n) => n.ae_title)).to.include.members(['WS1', 'REFSCP', 'LEONLY']);
      const put = await fetch(`${url}/${ws.id}`, {
        method: 'PUT',
        headers: json,
        body: JSON.stringify({ port: dest.port, host: '127.0.0.1', ae_title: 'REFSCP2' }),
      });
      expect(put.status).to.equal(200);
      expect(((await put.json()) as { port: number }).port).to.equal(dest.port);
      // storescp answers any called AE title: the echo reaches it.
      const echo = (await (await fetch(`${url}/${ws.id}/echo`, { method: 'POST', headers: admin })).json()) as {
        ok: boolean;
        status: number;
        ms: number;
      };
      expect(echo.ok).to.equal(true);
      expect(echo.status).to.equal(0);
      expect(echo.ms).to.be.a('number');
      const down = (await (await fetch(url, { headers: admin })).json()) as { items: Array<{ id: number; ae_title: string }> };
      const downId = down.items.find((n) => n.ae_title === 'DOWNSCP')!.id;
      const failed = (await (await fetch(`${url}/${downId}/echo`, { method: 'POST', headers: admin })).json()) as {
        ok: boolean;
        error?: string;
      };
      expect(failed.ok).to.equal(false);
      expect(failed.error).to.be.a('string');
      expect((await fetch(`${url}/${ws.id}`, { method: 'DELETE', headers: admin })).status).to.equal(204);
      expect((await fetch(`${url}/${ws.id}`, { headers: admin })).status).to.equal(404);
      const viewer = bearer(await tokenFor(node, 'viewer'));
      expect((await fetch(url, { headers: viewer })).status).to.equal(403);
      expect((await fetch(`${url}/${downId}/echo`, { method: 'POST', headers: viewer })).status).to.equal(403);
      const doc = (await (await fetch(`${baseUrl(node)}/openapi.json`)).json()) as {
        paths: Record<string, Record<string, { 'x-permission'?: string }>>;
      };
      expect(doc.paths['/api/nodes/{id}/echo']!.post!['x-permission']).to.equal('nodes:manage');
      const audit = (await node.db('audit_logs').where('action', 'like', 'node.%').select('action', 'outcome')) as Array<{
        action: string;
      }>;
      expect(audit.map((a) => a.action)).to.include.members(['node.create', 'node.update', 'node.echo', 'node.delete', 'node.list']);
    });
  });
}

onBothDatabases(describeRetrieve, 'radiant_move');

describe('Calling-AE allowlist', function () {
  this.timeout(60_000);
  let node: TestNode;

  before(async () => {
    node = await startTestNode({ DICOM_ALLOWED_AES: 'GOODSCU, OTHER' });
    await createRemoteNode(node.db, {
      aeTitle: 'TABLESCU',
      host: '127.0.0.1',
      port: 104,
      tls: false,
      description: null,
      allowQueryRetrieve: true,
      stowUrl: null,
    });
    await createRemoteNode(node.db, {
      aeTitle: 'BLOCKED',
      host: '127.0.0.1',
      port: 104,
      tls: false,
      description: null,
      allowQueryRetrieve: false,
      stowUrl: null,
    });
  });
  after(() => node?.cleanup());

  const echo = (aet: string) => runTool('echoscu', ['-aet', aet, '-aec', 'RADIANT', '127.0.0.1', String(node.dicomPort)]);

  it('rejects an unknown calling AE at association time', async () => {
    const r = await echo('STRANGER');
    expect(r.code).to.not.equal(0);
    expect(r.output).to.match(/Association Rejected|rejected/i);
    const blocked = await echo('BLOCKED');
    expect(blocked.code).to.not.equal(0);
  });

  it('admits AEs of DICOM_ALLOWED_AES and remote_nodes rows with allow_query_retrieve', async () => {
    expect((await echo('GOODSCU')).code).to.equal(0);
    expect((await echo('OTHER')).code).to.equal(0);
    expect((await echo('TABLESCU')).code).to.equal(0);
  });
});

describe('DIMSE over TLS (listener and SCU)', function () {
  this.timeout(120_000);
  let a: TestNode;
  let b: TestNode;
  let certDir: string;
  let study: string;
  let cert: string;
  let key: string;

  before(async function () {
    certDir = await tempDir('tls');
    cert = path.join(certDir, 'cert.pem');
    key = path.join(certDir, 'key.pem');
    const made = await runTool('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ]);
    if (made.code !== 0) throw new Error(`openssl: ${made.output}`);
    const tls = { DICOM_TLS_CERT: cert, DICOM_TLS_KEY: key, DICOM_TLS_CA: cert };
    a = await startTestNode(tls);
    b = await startTestNode({ ...tls, DICOM_AE_TITLE: 'NODEB' });
    for (const e of corpusDir('ct-series-chest-99').slice(0, 3)) {
      study = (await a.ingestor.ingestFile(e.absPath, false, { source: 'import' })).studyInstanceUid;
    }
    await createRemoteNode(a.db, {
      aeTitle: 'NODEB',
      host: '127.0.0.1',
      port: b.dicomPort,
      tls: true,
      description: null,
      allowQueryRetrieve: true,
      stowUrl: null,
    });
  });
  after(async () => {
    await a?.cleanup();
    await b?.cleanup();
    if (certDir) await fsp.rm(certDir, { recursive: true, force: true });
  });

  const tlsArgs = () => ['+tls', key, cert, '+cf', cert];

  it('the listener speaks TLS only, with client certificates', async () => {
    const plain = await runTool('echoscu', ['-aet', 'TESTSCU', '-aec', 'RADIANT', '127.0.0.1', String(a.dicomPort)], 15_000);
    expect(plain.code).to.not.equal(0);
    const secure = await runTool('echoscu', [...tlsArgs(), '-aet', 'TESTSCU', '-aec', 'RADIANT', '127.0.0.1', String(a.dicomPort)]);
    expect(secure.code, secure.output).to.equal(0);
  });

  it('C-MOVE over TLS to a node marked tls, and /api/nodes echo over TLS', async () => {
    // DCMTK's movescu has no TLS options: the dcmjs-dimse client sends the C-MOVE over TLS.
    const pem = (f: string) => fs.readFileSync(f);
    const responses = await moveWithClient(a.dicomPort, CMoveRequest.createStudyMoveRequest('NODEB', study), {
      securityOptions: { cert: pem(cert), key: pem(key), ca: pem(cert), rejectUnauthorized: true },
    });
    expect(responses.at(-1)!.getStatus()).to.equal(0x0000);
    expect(responses.at(-1)!.getCompleted()).to.equal(3);
    expect(
      await b
        .db('instances')
        .count({ n: '*' })
        .then((x) => Number((x[0] as { n: number | string }).n)),
    ).to.equal(3);
    const admin = bearer(await tokenFor(a, 'admin'));
    const nodes = (await (await fetch(`${baseUrl(a)}/api/nodes`, { headers: admin })).json()) as {
      items: Array<{ id: number; tls: boolean }>;
    };
    expect(nodes.items[0]!.tls).to.equal(true);
    const echo = (await (await fetch(`${baseUrl(a)}/api/nodes/${nodes.items[0]!.id}/echo`, { method: 'POST', headers: admin })).json()) as {
      ok: boolean;
    };
    expect(echo.ok).to.equal(true);
  });
});

describe('C-STORE SCU: syntax choice and outcomes', () => {
  it('sends as stored when accepted, else transcodes to Explicit VR LE first, never to a lossy or undecodable target', () => {
    expect(chooseSyntax(J2K_LOSSLESS, [J2K_LOSSLESS, EXPLICIT_LE])).to.equal(J2K_LOSSLESS);
    expect(chooseSyntax(J2K_LOSSLESS, ['1.2.840.10008.1.2', EXPLICIT_LE])).to.equal(EXPLICIT_LE);
    expect(chooseSyntax(J2K_LOSSLESS, ['1.2.840.10008.1.2'])).to.equal('1.2.840.10008.1.2');
    expect(chooseSyntax(EXPLICIT_LE, ['1.2.840.10008.1.2.4.50'])).to.equal(undefined);
    expect(chooseSyntax('1.2.840.10008.1.2.4.100', [EXPLICIT_LE])).to.equal(undefined);
    expect(chooseSyntax(EXPLICIT_LE, [])).to.equal(undefined);
  });

  it('classifies C-STORE statuses', () => {
    expect(outcomeOf(0x0000)).to.equal('completed');
    expect(outcomeOf(0xb000)).to.equal('warning');
    expect(outcomeOf(0xb007)).to.equal('warning');
    expect(outcomeOf(0xa700)).to.equal('failed');
    expect(outcomeOf(0x0122)).to.equal('failed');
    expect(outcomeOf(0xc000)).to.equal('failed');
  });

  it('finds the data set after the Part 10 meta', () => {
    const buf = fs.readFileSync(J2K_FILE);
    const { offset, transferSyntaxUid } = splitPart10(buf);
    expect(transferSyntaxUid).to.equal(J2K_LOSSLESS);
    expect(buf.readUInt16LE(offset)).to.not.equal(0x0002);
    expect(offset).to.equal(132 + 12 + buf.readUInt32LE(140));
    expect(() => splitPart10(Buffer.alloc(200))).to.throw(/Part 10/);
  });
});
