import fsp from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import dimse from 'dcmjs-dimse';
import { SOP_CLASS, makeCtSeries, makeMrSeries, writeSeries, type GeneratedFile } from '../fixtures/generate.js';
import { countInstances, findInstance, getStudySummary, listStudyInstances } from '../src/catalog/catalog.js';
import { parseHeaderFile } from '../src/dicom/header.js';
import { corpusRoot } from './helpers/corpus.js';
import { echoscu, storescu, type ToolResult } from './helpers/dcmtk.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { freshPostgresUrl } from './helpers/postgres.js';
import { readAll } from './helpers/streams.js';

/**
 * The DICOM listener with synthetic series and real peers (DCMTK's storescu/echoscu and the
 * dcmjs-dimse client): negotiated transfer syntaxes, concurrent associations, the association
 * limit, C-STORE validation against the command set, and SOP class negotiation.
 */

const { Client } = dimse;
const { CStoreRequest, CEchoRequest } = dimse.requests;
type CStoreRequestT = InstanceType<typeof CStoreRequest>;
type ResponseT = Parameters<InstanceType<typeof CStoreRequest>['raiseResponseEvent']>[0];

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const UNKNOWN_SOP_FILE = path.join(corpusRoot, 'malformed', 'UnknownSopClassUid.dcm');
const UNKNOWN_SOP_CLASS = '1.2.276.0.19.55.1.5.1.1.1';

const successes = (r: ToolResult): number => (r.output.match(/Received Store Response \(Success\)/g) ?? []).length;

/** Offset of the first byte after the Part 10 meta group. */
function metaEnd(buf: Buffer): number {
  return 132 + 12 + buf.readUInt32LE(132 + 8);
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Send one request with the dcmjs-dimse client and wait for its response and the end of the association. */
function sendWithClient(
  port: number,
  request: CStoreRequestT | InstanceType<typeof CEchoRequest>,
  opts: { associationLingerTimeout?: number; onResponse?: (r: ResponseT) => void } = {},
): Promise<ResponseT> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let response: ResponseT | undefined;
    request.on('response', (r: ResponseT) => {
      response = r;
      opts.onResponse?.(r);
    });
    client.on('associationRejected', (r: unknown) => reject(new Error(`association rejected: ${JSON.stringify(r)}`)));
    client.on('networkError', (e: Error) => reject(e));
    client.on('closed', () => (response ? resolve(response) : reject(new Error('association closed without a response'))));
    client.addRequest(request);
    client.send('127.0.0.1', port, 'TESTSCU', 'RADIANT', {
      associationLingerTimeout: opts.associationLingerTimeout,
      connectTimeout: 5000,
    });
  });
}

/** Four storescu associations at once, each sending another 20-slice series of one study. */
async function sendStudyConcurrently(node: TestNode, dir: string): Promise<void> {
  const patient = { id: 'PID-CONC', name: 'Concurrent^Four' };
  const first = makeCtSeries({ patient, accessionNumber: 'CONC1', slices: 20, seriesNumber: 1 });
  const same = { patient, accessionNumber: 'CONC1', studyInstanceUid: first[0]!.studyInstanceUid };
  const studyInstanceUid = same.studyInstanceUid;
  const series: GeneratedFile[][] = [
    first,
    makeCtSeries({ ...same, slices: 20, seriesNumber: 2 }),
    makeMrSeries({ ...same, slices: 20, seriesNumber: 3 }),
    makeMrSeries({ ...same, slices: 20, seriesNumber: 4, transferSyntax: 'implicit' }),
  ];
  const paths = await Promise.all(series.map((s, i) => writeSeries(path.join(dir, `series-${i}`), s)));
  const results = await Promise.all(paths.map((p, i) => storescu(node.dicomPort, p, ['-v', ...(i === 3 ? ['-xi'] : [])])));
  for (const r of results) {
    expect(r.code, r.output).to.equal(0);
    expect(successes(r), r.output).to.equal(20);
    expect(r.output).to.not.match(/Received Store Response \((?!Success)/);
  }
  const study = await getStudySummary(node.db, studyInstanceUid);
  expect(study).to.include({ num_series: 4, num_instances: 80, modalities_in_study: 'CT\\MR', patient_id: 'PID-CONC' });
  const rows = await listStudyInstances(node.db, studyInstanceUid);
  expect(rows).to.have.length(80);
  const sent = new Set(series.flat().map((f) => f.sopInstanceUid));
  expect(new Set(rows.map((r) => r.sop_instance_uid))).to.deep.equal(sent);
  for (const s of series) {
    expect(rows.filter((r) => r.series_instance_uid === s[0]!.seriesInstanceUid)).to.have.length(20);
  }
}

describe('DIMSE listener with synthetic series', function () {
  this.timeout(120_000);
  let work: string;

  before(async () => {
    work = await tempDir('dimse');
  });
  after(async () => {
    await fsp.rm(work, { recursive: true, force: true });
  });

  describe('on SQLite + local storage', () => {
    let node: TestNode;
    before(async () => {
      node = await startTestNode();
    });
    after(async () => {
      await node?.cleanup();
    });

    it('stores a 20-slice CT (explicit VR) and an MR sent implicit VR (-xi) in the negotiated syntax', async () => {
      const patient = { id: 'PID-TS', name: 'Syntax^Two' };
      const ct = makeCtSeries({ patient, slices: 20 });
      const studyInstanceUid = ct[0]!.studyInstanceUid;
      const mr = makeMrSeries({ patient, studyInstanceUid, slices: 8, transferSyntax: 'implicit' });
      const ctPaths = await writeSeries(path.join(work, 'ct-explicit'), ct);
      const mrPaths = await writeSeries(path.join(work, 'mr-implicit'), mr);

      const rc = await storescu(node.dicomPort, ctPaths, ['-v']);
      expect(rc.code, rc.output).to.equal(0);
      expect(successes(rc)).to.equal(20);
      const rm = await storescu(node.dicomPort, mrPaths, ['-v', '-xi']);
      expect(rm.code, rm.output).to.equal(0);
      expect(successes(rm)).to.equal(8);

      const study = await getStudySummary(node.db, studyInstanceUid);
      expect(study).to.include({ num_series: 2, num_instances: 28, modalities_in_study: 'CT\\MR' });
      for (const [files, ts] of [
        [ct, EXPLICIT_LE],
        [mr, IMPLICIT_LE],
      ] as const) {
        for (const f of files) {
          const row = await findInstance(node.db, f.sopInstanceUid);
          expect(row, f.sopInstanceUid).to.not.equal(undefined);
          expect(row!.transfer_syntax_uid).to.equal(ts);
          expect(row!.series_instance_uid).to.equal(f.seriesInstanceUid);
          const stored = await readAll(await node.storage.get(row!.storage_key));
          // The data set arrives as it was sent: identical after the (node-written) meta group.
          expect(stored.subarray(metaEnd(stored)).equals(f.bytes.subarray(metaEnd(f.bytes))), f.sopInstanceUid).to.equal(true);
        }
      }
    });

    it('takes 4 concurrent associations each sending a 20-slice series of one study: 80 instances, 4 series', async () => {
      await sendStudyConcurrently(node, path.join(work, 'concurrent-sqlite'));
    });

    it('refuses a C-STORE whose Affected SOP Instance UID differs from the data set (0xA900), indexes nothing, keeps serving', async () => {
      const [f] = makeCtSeries({ slices: 1 });
      const [file] = await writeSeries(path.join(work, 'mismatch'), [f!]);
      const announced = `${f!.sopInstanceUid}.99`;
      const request = new CStoreRequest(file!);
      expect(request.getAffectedSopInstanceUid()).to.equal(f!.sopInstanceUid);
      request.setAffectedSopInstanceUid(announced);
      expect(request.getAffectedSopInstanceUid()).to.equal(announced);
      const before = await countInstances(node.db);

      const response = await sendWithClient(node.dicomPort, request);
      // The command set on the wire carried the announced UID: the response echoes it.
      expect(response.getAffectedSopInstanceUid()).to.equal(announced);
      expect(response.getStatus()).to.equal(0xa900);
      const comment = response.getErrorComment();
      expect(comment).to.be.a('string').and.not.equal('');
      expect(comment.length).to.be.at.most(64);

      expect(await findInstance(node.db, f!.sopInstanceUid)).to.equal(undefined);
      expect(await findInstance(node.db, announced)).to.equal(undefined);
      expect(await countInstances(node.db)).to.equal(before);
      const echo = await echoscu(node.dicomPort);
      expect(echo.code, echo.output).to.equal(0);
      // And the same instance, announced correctly, is stored.
      const ok = await sendWithClient(node.dicomPort, new CStoreRequest(file!));
      expect(ok.getStatus()).to.equal(0x0000);
      expect(await findInstance(node.db, f!.sopInstanceUid)).to.not.equal(undefined);
    });

    it('names the Affected SOP Instance/Class UID mismatch in the ErrorComment, not a file meta element the SCU never sent', async () => {
      const [f] = makeCtSeries({ slices: 1 });
      const [file] = await writeSeries(path.join(work, 'mismatch-comment'), [f!]);
      const wrongInstance = new CStoreRequest(file!);
      wrongInstance.setAffectedSopInstanceUid(`${f!.sopInstanceUid}.98`);
      const wrongClass = new CStoreRequest(file!);
      wrongClass.setAffectedSopClassUid(SOP_CLASS.mr); // a CT data set announced as MR
      const comments: Record<string, string> = {};
      for (const [what, request] of [
        ['instance', wrongInstance],
        ['class', wrongClass],
      ] as const) {
        const response = await sendWithClient(node.dicomPort, request);
        expect(response.getStatus(), what).to.equal(0xa900);
        comments[what] = response.getErrorComment();
      }
      expect(await findInstance(node.db, f!.sopInstanceUid)).to.equal(undefined);
      // A C-STORE carries no file meta information; the comment must point at what the peer sent.
      const names = (comment: string, element: string) => comment.includes(`Affected ${element}`) && !/\(0002,/.test(comment);
      expect(
        { instance: names(comments.instance!, 'SOP Instance UID'), class: names(comments.class!, 'SOP Class UID') },
        `ErrorComments: ${JSON.stringify(comments)}`,
      ).to.deep.equal({ instance: true, class: true });
    });

    it('rejects an unknown (private) SOP class at negotiation and stores nothing', async () => {
      const cfg = await writeUnknownSopProfile(work);
      const before = await countInstances(node.db);
      const r = await storescu(node.dicomPort, [UNKNOWN_SOP_FILE], ['-v', '+v', '-xf', cfg, 'UnknownSop']);
      expect(r.code, r.output).to.not.equal(0);
      expect(r.output).to.include(UNKNOWN_SOP_CLASS);
      expect(r.output).to.match(/Context ID:\s+1 \(Abstract Syntax Not Supported\)/);
      expect(r.output).to.match(/No Acceptable Presentation Contexts/);
      expect(r.output).to.not.match(/Received Store Response/);
      expect(await countInstances(node.db)).to.equal(before);
      const sop = await sopInstanceUidOf(UNKNOWN_SOP_FILE);
      expect(await findInstance(node.db, sop)).to.equal(undefined);
      expect((await echoscu(node.dicomPort)).code).to.equal(0);
    });
  });

  it('stores the unknown SOP class when DICOM_ACCEPT_UNKNOWN_SOP_CLASSES=true', async () => {
    const node = await startTestNode({ DICOM_ACCEPT_UNKNOWN_SOP_CLASSES: 'true' });
    try {
      const cfg = await writeUnknownSopProfile(work);
      const r = await storescu(node.dicomPort, [UNKNOWN_SOP_FILE], ['-v', '+v', '-xf', cfg, 'UnknownSop']);
      expect(r.code, r.output).to.equal(0);
      expect(r.output).to.match(/Context ID:\s+1 \(Accepted\)/);
      expect(successes(r), r.output).to.equal(1);
      const row = await findInstance(node.db, await sopInstanceUidOf(UNKNOWN_SOP_FILE));
      expect(row).to.not.equal(undefined);
      expect(row!.sop_class_uid).to.equal(UNKNOWN_SOP_CLASS);
      expect(row!.transfer_syntax_uid).to.equal(IMPLICIT_LE);
    } finally {
      await node.cleanup();
    }
  });

  it('with DICOM_MAX_ASSOCIATIONS=1 rejects a second association (transient, local limit) while one is open', async () => {
    const node = await startTestNode({ DICOM_MAX_ASSOCIATIONS: '1' });
    try {
      let whileHeld: Promise<ToolResult> | undefined;
      let activeWhileHeld = -1;
      // The client keeps its association open for a while after the C-ECHO response; the second
      // association is requested during that time.
      const first = await sendWithClient(node.dicomPort, new CEchoRequest(), {
        associationLingerTimeout: 2000,
        onResponse: () => {
          activeWhileHeld = node.dimse.activeAssociations;
          whileHeld = echoscu(node.dicomPort);
        },
      });
      expect(first.getStatus()).to.equal(0x0000);
      expect(activeWhileHeld).to.equal(1);
      const rejected = await whileHeld!;
      expect(rejected.code, rejected.output).to.not.equal(0);
      expect(rejected.output).to.match(/Association Rejected/);
      expect(rejected.output).to.match(/Rejected Transient/);
      expect(rejected.output).to.match(/Local Limit Exceeded/);

      await until('the first association to be released', () => node.dimse.activeAssociations === 0);
      const accepted = await echoscu(node.dicomPort);
      expect(accepted.code, accepted.output).to.equal(0);
      // Rejected associations do not leak a slot: a third one is accepted as well.
      const again = await echoscu(node.dicomPort);
      expect(again.code, again.output).to.equal(0);
      expect(node.dimse.activeAssociations).to.equal(0);
    } finally {
      await node.cleanup();
    }
  });

  describe('on PostgreSQL + local storage', () => {
    let node: TestNode | undefined;
    before(async () => {
      node = await startTestNode({ DATABASE_URL: await freshPostgresUrl('radiant_dimse') });
    });
    after(async () => {
      await node?.cleanup();
    });

    it('stores a 20-slice CT sent by storescu with the right counts', async () => {
      const ct = makeCtSeries({ slices: 20, accessionNumber: 'PGCT' });
      const paths = await writeSeries(path.join(work, 'pg-ct'), ct);
      const r = await storescu(node!.dicomPort, paths, ['-v']);
      expect(r.code, r.output).to.equal(0);
      expect(successes(r)).to.equal(20);
      const study = await getStudySummary(node!.db, ct[0]!.studyInstanceUid);
      expect(study).to.include({ num_series: 1, num_instances: 20, modalities_in_study: 'CT', accession_number: 'PGCT' });
      for (const f of ct) {
        const row = await findInstance(node!.db, f.sopInstanceUid);
        expect(row?.transfer_syntax_uid, f.sopInstanceUid).to.equal(EXPLICIT_LE);
      }
    });

    it('takes 4 concurrent associations into one study: 80 instances, 4 series', async () => {
      await sendStudyConcurrently(node!, path.join(work, 'concurrent-pg'));
    });
  });
});

/** A storescu association profile that proposes the corpus file's private SOP class. */
async function writeUnknownSopProfile(dir: string): Promise<string> {
  const file = path.join(dir, 'unknown-sop.cfg');
  await fsp.writeFile(
    file,
    [
      '[[TransferSyntaxes]]',
      '[Uncompressed]',
      'TransferSyntax1 = LittleEndianImplicit',
      'TransferSyntax2 = LittleEndianExplicit',
      '[[PresentationContexts]]',
      '[UnknownSopContexts]',
      `PresentationContext1 = ${UNKNOWN_SOP_CLASS}\\Uncompressed`,
      '[[Profiles]]',
      '[UnknownSop]',
      'PresentationContexts = UnknownSopContexts',
      '',
    ].join('\n'),
  );
  return file;
}

async function sopInstanceUidOf(file: string): Promise<string> {
  const parsed = await parseHeaderFile(file, 64 * 1024 * 1024);
  if (!parsed.ok || !parsed.header.sopInstanceUid) throw new Error(`${file}: no SOP Instance UID`);
  return parsed.header.sopInstanceUid;
}
