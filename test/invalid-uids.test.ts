import { expect } from 'chai';
import fsp from 'node:fs/promises';
import path from 'node:path';
import dcmjs from 'dcmjs';
import { makeCrImage, type GeneratedFile } from '../fixtures/generate.js';
import { countInstances, findInstance, getStudySummary } from '../src/catalog/catalog.js';
import { auditRows } from './helpers/api.js';
import { storescu } from './helpers/dcmtk.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { rewrite } from './helpers/rewrite.js';
import { readAll } from './helpers/streams.js';
import { items, multipartBody, rawPost, stowContentType, value } from './helpers/stow.js';

/**
 * Issue 13 item 3: dcmjs formats UI values by deleting every character but digits and dots, so an
 * instance whose SOP Instance UID was `1.2.3';DROP_TABLE_instances;--` or `1.2.3ZZZ` was indexed
 * as `1.2.3` and silently replaced another patient's instance. Every UID the node keys on, in the
 * data set and in the file meta, is now read as encoded and refused when it is not a UID: C-STORE
 * 0xA900 with the reason, STOW-RS failure 0xA900, nothing indexed, the other instance untouched.
 */

dcmjs.log.setLevel('silent');

const PATIENT_A = { id: 'UID-PAT-A', name: 'Alpha^Anne' };
const PATIENT_B = { id: 'UID-PAT-B', name: 'Bravo^Bert' };

/** Offset of the first byte after the Part 10 meta group. */
function metaEnd(buf: Buffer): number {
  return 132 + 12 + buf.readUInt32LE(132 + 8);
}

/** Replaces a value inside the file meta by another of the same length (group length unchanged). */
function patchMeta(bytes: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('patchMeta keeps lengths');
  const at = bytes.subarray(0, metaEnd(bytes)).indexOf(Buffer.from(from, 'latin1'));
  if (at < 0) throw new Error(`${from} not in the file meta`);
  const out = Buffer.from(bytes);
  out.write(to, at, 'latin1');
  return out;
}

/** The reason the node gave for the last STOW-RS failure (audit details; not in the DICOM response). */
async function stowFailureMessage(node: TestNode): Promise<string> {
  const rows = await auditRows(node, 'dicomweb.stow');
  const details = JSON.parse(rows.at(-1)?.details ?? '{}') as { failures?: Array<{ message: string }> };
  return details.failures?.[0]?.message ?? '';
}

describe('UIDs that are not UIDs are refused, never normalised (issue 13 item 3)', function () {
  this.timeout(120_000);
  let node: TestNode;
  let token: string;
  let work: string;
  let stored: GeneratedFile;

  before(async () => {
    node = await startTestNode();
    token = await tokenFor(node, 'admin');
    work = await tempDir('uids');
    // Patient A's instance, SOP Instance UID 1.2.3: what a normalised UID would land on.
    const a = makeCrImage({ size: 8, patient: PATIENT_A })[0]!;
    stored = { ...a, sopInstanceUid: '1.2.3', bytes: rewrite(a.bytes, { '00080018': '1.2.3' }) };
    const res = await stow(stored.bytes);
    expect(res.status, res.text).to.equal(200);
  });
  after(async () => {
    await node?.cleanup();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  function stow(bytes: Buffer) {
    return rawPost(`${baseUrl(node)}/dicom-web/studies`, { ...bearer(token), 'content-type': stowContentType() }, multipartBody([bytes]));
  }

  /** Patient A's 1.2.3 is still indexed in its own study, with its own bytes. */
  async function expectPatientAUntouched(): Promise<void> {
    const row = await findInstance(node.db, '1.2.3');
    expect(row, 'instance 1.2.3').to.not.equal(undefined);
    expect(row!.study_instance_uid).to.equal(stored.studyInstanceUid);
    const blob = await readAll(await node.storage.get(row!.storage_key));
    expect(blob.equals(stored.bytes), "the stored bytes are patient A's").to.equal(true);
  }

  /** Patient B's instance with one data set element set to `uid` (the meta follows for the SOP Instance UID). */
  function patientB(tag: string, uid: string): GeneratedFile {
    const b = makeCrImage({ size: 8, patient: PATIENT_B })[0]!;
    return { ...b, bytes: rewrite(b.bytes, { [tag]: uid }) };
  }

  const dataSetCases: Array<[string, string, string, string]> = [
    ['SOP Instance UID', '00080018', "1.2.3';DROP_TABLE_instances;--", '(0008,0018) SOP Instance UID'],
    ['SOP Instance UID', '00080018', '1.2.3ZZZ', '(0008,0018) SOP Instance UID'],
    ['SOP Instance UID with two values', '00080018', '1.2.3\\1.2.4', '(0008,0018) SOP Instance UID'],
    ['SOP Instance UID with a leading zero component', '00080018', '1.2.03', '(0008,0018) SOP Instance UID'],
    ['Study Instance UID', '0020000D', '1.2.826.0.1.3680043.2.1143.777x', '(0020,000D) Study Instance UID'],
    ['Series Instance UID', '0020000E', "1.2.826.0.1.3680043.2.1143.778'--", '(0020,000E) Series Instance UID'],
  ];
  for (const [what, tag, uid, name] of dataSetCases) {
    it(`C-STORE (storescu) and STOW-RS: ${what} ${JSON.stringify(uid)} → 0xA900 "invalid ${name}", nothing indexed`, async () => {
      const b = patientB(tag, uid);
      const file = path.join(work, `${b.seriesInstanceUid}.dcm`);
      await fsp.writeFile(file, b.bytes);
      const before = await countInstances(node.db);
      const expected = `invalid ${name} ${JSON.stringify(uid)}: not a UID (PS3.5 9.1)`;

      const r = await storescu(node.dicomPort, [file], ['-d']);
      expect(r.output).to.match(/DIMSE Status\s*: 0xa900/);
      // The ErrorComment: the same reason, cut to 64 ASCII characters (DCMTK prints it as is).
      const comment = /\(0000,0902\) LO \[(.*)\]/.exec(r.output)?.[1];
      expect(comment, r.output).to.be.a('string');
      expect(expected.startsWith(comment!.replace(/\.\.\.$/, '')), `${comment} vs ${expected}`).to.equal(true);
      expect(comment).to.match(new RegExp(`^invalid ${name.replace(/[()]/g, '\\$&')}`));

      const res = await stow(b.bytes);
      expect(res.status, res.text).to.equal(409);
      expect(value<number>(items(res.json(), '00081198')[0]!, '00081197')).to.equal(0xa900);
      expect(await stowFailureMessage(node)).to.equal(expected);

      expect(await countInstances(node.db)).to.equal(before);
      expect(await getStudySummary(node.db, b.studyInstanceUid)).to.equal(undefined);
      await expectPatientAUntouched();
    });
  }

  it('STOW-RS: an invalid SOP Class UID (storescu cannot even propose it) → 0xA900, nothing indexed', async () => {
    const b = patientB('00080016', '1.2.840.10008.5.1.4.1.1.1x');
    const before = await countInstances(node.db);
    const res = await stow(b.bytes);
    expect(res.status, res.text).to.equal(409);
    expect(value<number>(items(res.json(), '00081198')[0]!, '00081197')).to.equal(0xa900);
    const expected = 'invalid (0008,0016) SOP Class UID "1.2.840.10008.5.1.4.1.1.1x": not a UID (PS3.5 9.1)';
    expect(await stowFailureMessage(node)).to.equal(expected);
    expect(await countInstances(node.db)).to.equal(before);
  });

  describe('file meta UIDs (STOW-RS carries the meta as sent)', () => {
    const metaCases: Array<[string, (f: GeneratedFile) => Buffer, RegExp]> = [
      [
        '(0002,0003) Media Storage SOP Instance UID',
        (f) => patchMeta(f.bytes, f.sopInstanceUid, `${f.sopInstanceUid.slice(0, -1)}Z`),
        /^invalid meta \(0002,0003\) Media Storage SOP Instance UID ".*Z": not a UID/,
      ],
      [
        '(0002,0002) Media Storage SOP Class UID',
        (f) => patchMeta(f.bytes, f.sopClassUid, `${f.sopClassUid.slice(0, -1)}x`),
        /^invalid meta \(0002,0002\) Media Storage SOP Class UID "1\.2\.840\.10008\.5\.1\.4\.1\.1\.x": not a UID/,
      ],
      [
        '(0002,0010) Transfer Syntax UID',
        (f) => patchMeta(f.bytes, '1.2.840.10008.1.2.1\0', '1.2.840.10008.1.2.1Z'),
        /^invalid meta \(0002,0010\) Transfer Syntax UID "1\.2\.840\.10008\.1\.2\.1Z": not a UID/,
      ],
    ];
    for (const [name, make, reason] of metaCases) {
      it(`${name} that is not a UID (the data set's is valid) → 0xA900, nothing indexed`, async () => {
        const b = makeCrImage({ size: 8, patient: PATIENT_B })[0]!;
        const before = await countInstances(node.db);
        const res = await stow(make(b));
        expect(res.status, res.text).to.equal(409);
        expect(value<number>(items(res.json(), '00081198')[0]!, '00081197')).to.equal(0xa900);
        expect(await stowFailureMessage(node)).to.match(reason);
        expect(await findInstance(node.db, b.sopInstanceUid)).to.equal(undefined);
        expect(await countInstances(node.db)).to.equal(before);
        // The same instance with its meta intact is stored.
        const ok = await stow(b.bytes);
        expect(ok.status, ok.text).to.equal(200);
        expect(await findInstance(node.db, b.sopInstanceUid)).to.not.equal(undefined);
      });
    }
  });

  it('a valid odd-length UID (padded with a NUL, PS3.5 9.1) is stored under the UID itself', async () => {
    const b = makeCrImage({ size: 8, patient: PATIENT_B })[0]!;
    // 64-character UIDs leave no room for padding; the fixture's are shorter. dcmjs pads odd lengths with NUL.
    const odd = b.sopInstanceUid.length % 2 === 1 ? b.sopInstanceUid : `${b.sopInstanceUid}1`;
    const res = await stow(rewrite(b.bytes, { '00080018': odd }));
    expect(res.status, res.text).to.equal(200);
    expect(await findInstance(node.db, odd)).to.not.equal(undefined);
  });
});
