import { expect } from 'chai';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { rawPart10 } from '../fixtures/raw-part10.js';
import type { GeneratedFile } from '../fixtures/generate.js';
import { up as trimPaddedValues } from '../migrations/016_trim_padded_values.js';
import { corpusRoot } from './helpers/corpus.js';
import { runTool } from './helpers/dcmtk.js';
import { findscu, parseFindscu } from './helpers/dimse-client.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { multipartBody, stowContentType } from './helpers/stow.js';
import { readMultipartResponse } from './helpers/wado.js';

/**
 * Values as read, on a real node with real files and real clients (issue 17 items 3, 4, 8, 9):
 * NUL padding, legacy DA on a big-endian file (dcmodify), every kind of Specific Character Set
 * (the corpus's single-byte files and the PS3.5 Annex H/I/J ISO 2022 examples written byte by
 * byte), OL/OV/SV/UV, and a meta group without (0002,0002). QIDO-RS and WADO-RS over HTTP,
 * C-FIND with DCMTK findscu.
 */

type Dataset = Record<string, { vr: string; Value?: unknown[]; InlineBinary?: string }>;

const u64 = (...v: bigint[]) => {
  const b = Buffer.alloc(8 * v.length);
  v.forEach((x, i) => b.writeBigUInt64LE(BigInt.asUintN(64, x), i * 8));
  return b;
};

const raw = {
  brainix: rawPart10({
    elements: [
      { tag: 0x00100010, vr: 'PN', value: Buffer.from('BRAINIX\0', 'latin1') },
      { tag: 0x00081030, vr: 'LO', value: ' Head \0\0' },
    ],
  }),
  japanese: rawPart10({
    elements: [
      { tag: 0x00080005, vr: 'CS', value: '\\ISO 2022 IR 87' },
      { tag: 0x00100010, vr: 'PN', value: 'Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B' },
    ],
  }),
  korean: rawPart10({
    elements: [
      { tag: 0x00080005, vr: 'CS', value: '\\ISO 2022 IR 149' },
      { tag: 0x00100010, vr: 'PN', value: 'Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf' },
    ],
  }),
  chinese: rawPart10({
    elements: [
      { tag: 0x00080005, vr: 'CS', value: 'GB18030' },
      { tag: 0x00100010, vr: 'PN', value: 'Wang^XiaoDong=\xcd\xf5^\xd0\xa1\x96\x7c=' },
    ],
  }),
  wide: rawPart10({
    elements: [
      { tag: 0x00660129, vr: 'OL', value: Buffer.from([1, 0, 0, 0, 2, 0, 0, 0]) },
      { tag: 0x00720081, vr: 'OV', value: u64(5n) },
      { tag: 0x00720082, vr: 'SV', value: u64(-3n, 9007199254740993n) },
      { tag: 0x0008040c, vr: 'UV', value: u64(7n, 18446744073709551615n) },
    ],
  }),
  noMetaSopClass: rawPart10({ omitMetaSopClass: true }),
  latin1: rawPart10({
    elements: [
      { tag: 0x00080005, vr: 'CS', value: 'ISO_IR 100' },
      { tag: 0x00100010, vr: 'PN', value: 'M\xfcller^Hans' },
    ],
  }),
};

/** The corpus's single-byte character set files, PatientName as DCMTK's dcmconv +U8 decodes it. */
const CHARSET_FILES: Record<string, string> = {
  'Lena-latin1.dcm': 'Test-éüäöò',
  'Lena-latin2.dcm': 'Test-éüäö',
  'Lena-latin3.dcm': 'Test-éüäöòĝİ',
  'Lena-latin4.dcm': 'Test-éüäöķ',
  'Lena-latin5.dcm': 'Test-éüäöòİ',
  'Lena-cyrillic.dcm': 'Test-Дћ',
  'Lena-greek.dcm': 'Test-Θ',
  'Lena-hebrew.dcm': 'Test-ד',
  'Lena-arabic.dcm': 'Test-ص',
  'Lena-tis-620.dcm': 'Test-๛',
  'Lena-shift-jis.dcm': 'Test-ДΘﾈ',
  'Lena-utf8.dcm': 'Test-éüäöòДΘĝדصķћ๛ﾈİ',
};

describe('values as read: padding, legacy values, character sets, 64-bit VRs', function () {
  this.timeout(120_000);
  let node: TestNode;
  let url: string;
  let auth: Record<string, string>;
  let dir: string;
  const instanceUrl = (f: Pick<GeneratedFile, 'studyInstanceUid' | 'seriesInstanceUid' | 'sopInstanceUid'>) =>
    `${url}/dicom-web/studies/${f.studyInstanceUid}/series/${f.seriesInstanceUid}/instances/${f.sopInstanceUid}`;
  const json = async (u: string): Promise<Dataset[]> => {
    const res = await fetch(u, { headers: { ...auth, accept: 'application/dicom+json' } });
    expect(res.status, `${u}: ${res.status}`).to.equal(200);
    return (await res.json()) as Dataset[];
  };
  const qido = (query: string) => json(`${url}/dicom-web/studies?${query}`);

  before(async () => {
    node = await startTestNode();
    url = baseUrl(node);
    auth = bearer(await tokenFor(node, 'admin'));
    dir = await tempDir('values');
    const res = await fetch(`${url}/dicom-web/studies`, {
      method: 'POST',
      headers: { ...auth, 'content-type': stowContentType(), accept: 'application/dicom+json' },
      body: multipartBody(Object.values(raw).map((f) => f.bytes)),
    });
    expect(res.status, await res.clone().text()).to.equal(200);
  });
  after(async () => {
    await node?.cleanup();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('a PatientName stored with a trailing NUL matches exactly, in QIDO-RS and DCMTK findscu', async () => {
    const rows = await qido('PatientName=BRAINIX');
    expect(rows.map((r) => r['0020000D']?.Value?.[0])).to.deep.equal([raw.brainix.studyInstanceUid]);
    expect(rows[0]!['00100010']).to.deep.equal({ vr: 'PN', Value: [{ Alphabetic: 'BRAINIX' }] });
    expect((await qido('StudyDescription=Head')).length).to.equal(1);
    const meta = (await json(`${instanceUrl(raw.brainix)}/metadata`))[0]!;
    expect(meta['00081030']).to.deep.equal({ vr: 'LO', Value: ['Head'] });

    const found = await findscu(node.dicomPort, [
      '-S',
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      'PatientName=BRAINIX',
      '-k',
      'StudyInstanceUID',
    ]);
    expect(found.final).to.equal('Success');
    expect(found.answers.map((a) => a.elements['0020,000d'])).to.deep.equal([raw.brainix.studyInstanceUid]);
  });

  it('ISO 2022 and GB18030 Person Names decode per component group in metadata, QIDO answers and matching', async () => {
    const expected: Array<[GeneratedFile, Record<string, string>]> = [
      [raw.japanese, { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }],
      [raw.korean, { Alphabetic: 'Hong^Gildong', Ideographic: '洪^吉洞', Phonetic: '홍^길동' }],
      [raw.chinese, { Alphabetic: 'Wang^XiaoDong', Ideographic: '王^小東' }],
    ];
    for (const [f, pn] of expected) {
      const meta = (await json(`${instanceUrl(f)}/metadata`))[0]!;
      expect(meta['00100010'], f.sopInstanceUid).to.deep.equal({ vr: 'PN', Value: [pn] });
      expect(meta['00080005']).to.deep.equal({ vr: 'CS', Value: ['ISO_IR 192'] });
      const rows = await qido(`StudyInstanceUID=${f.studyInstanceUid}`);
      expect(rows[0]!['00100010']).to.deep.equal({ vr: 'PN', Value: [pn] });
    }
    const yamada = await qido(`PatientName=${encodeURIComponent('Yamada^Tarou=山田^太郎=やまだ^たろう')}`);
    expect(yamada.map((r) => r['0020000D']?.Value?.[0])).to.deep.equal([raw.japanese.studyInstanceUid]);
    const hong = await qido('PatientName=hong*');
    expect(hong.map((r) => r['0020000D']?.Value?.[0])).to.deep.equal([raw.korean.studyInstanceUid]);
  });

  it("the corpus's character set files decode to the Unicode DCMTK gives, and match on it", async () => {
    for (const [file, name] of Object.entries(CHARSET_FILES)) {
      const r = await node.ingestor.ingestFile(path.join(corpusRoot, 'charsets', file), false, { source: 'import' });
      const meta = (await json(`${instanceUrl(r)}/metadata`))[0]!;
      expect(meta['00100010'], file).to.deep.equal({ vr: 'PN', Value: [{ Alphabetic: name }] });
      const rows = await qido(`PatientName=${encodeURIComponent(name)}&StudyInstanceUID=${r.studyInstanceUid}`);
      expect(rows.length, file).to.equal(1);
    }
  });

  it('C-FIND identifiers in ISO_IR 100 and ISO 2022 (IR 87, IR 149) decode before matching; answers come in UTF-8', async () => {
    // Query files written byte by byte (dump2dcm keeps the bytes): findscu sends them as they are.
    const query = async (name: string, charset: string, patientName: string) => {
      const dump = path.join(dir, `${name}.txt`);
      const file = path.join(dir, `${name}.dcm`);
      const lines = [`(0008,0005) CS [${charset}]`, '(0008,0052) CS [STUDY]', `(0010,0010) PN [${patientName}]`, '(0020,000d) UI'];
      await fsp.writeFile(dump, Buffer.from(`${lines.join('\n')}\n`, 'latin1'));
      const made = await runTool('dump2dcm', [dump, file]);
      expect(made.code, made.output).to.equal(0);
      // findscu takes query files after the peer and port.
      const sent = await runTool('findscu', ['-v', '-S', '-aet', 'TESTSCU', '-aec', 'RADIANT', '127.0.0.1', String(node.dicomPort), file]);
      return parseFindscu(sent.output);
    };
    const latin = await query('latin1', 'ISO_IR 100', 'M\xfcller*');
    expect(latin.final).to.equal('Success');
    expect(latin.answers.map((a) => a.elements['0020,000d'])).to.deep.equal([raw.latin1.studyInstanceUid]);
    expect(latin.answers[0]!.elements['0008,0005']).to.equal('ISO_IR 192');
    expect(latin.answers[0]!.elements['0010,0010']).to.equal('Müller^Hans');

    const japanese = await query(
      'ir87',
      '\\ISO 2022 IR 87',
      'Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B',
    );
    expect(japanese.final).to.equal('Success');
    expect(japanese.answers.map((a) => a.elements['0020,000d'])).to.deep.equal([raw.japanese.studyInstanceUid]);
    expect(japanese.answers[0]!.elements['0010,0010']).to.equal('Yamada^Tarou=山田^太郎=やまだ^たろう');

    const korean = await query(
      'ir149',
      '\\ISO 2022 IR 149',
      'Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf',
    );
    expect(korean.answers.map((a) => a.elements['0020,000d'])).to.deep.equal([raw.korean.studyInstanceUid]);
  });

  it('OL and OV keep their VR (InlineBinary, little endian); SV and UV are numbers, strings beyond 2^53', async () => {
    const meta = (await json(`${instanceUrl(raw.wide)}/metadata`))[0]!;
    expect(meta['00660129']).to.deep.equal({ vr: 'OL', InlineBinary: Buffer.from([1, 0, 0, 0, 2, 0, 0, 0]).toString('base64') });
    expect(meta['00720081']).to.deep.equal({ vr: 'OV', InlineBinary: u64(5n).toString('base64') });
    expect(meta['00720082']).to.deep.equal({ vr: 'SV', Value: [-3, '9007199254740993'] });
    expect(meta['0008040C']).to.deep.equal({ vr: 'UV', Value: [7, '18446744073709551615'] });
  });

  it('a file whose meta group lacks (0002,0002) is stored (SOP Class UID from the data set) and served', async () => {
    const rows = await json(`${url}/dicom-web/studies/${raw.noMetaSopClass.studyInstanceUid}/instances`);
    expect(rows.map((r) => r['00080016']?.Value?.[0])).to.deep.equal([raw.noMetaSopClass.sopClassUid]);
  });

  it('a legacy DA ("1997.04.24", set with dcmodify) on a big-endian file: normalised in JSON, frames and transcoding still flow', async () => {
    const file = path.join(dir, 'bigendian-legacy-da.dcm');
    await fsp.copyFile(path.join(corpusRoot, 'transfer-syntaxes/pydicom/MR_small_bigendian.dcm'), file);
    const mod = await runTool('dcmodify', ['-nb', '-i', '(0008,0020)=1997.04.24', file]);
    expect(mod.code, mod.output).to.equal(0);
    const r = await node.ingestor.ingestFile(file, false, { source: 'import' });
    expect(r.transferSyntaxUid).to.equal('1.2.840.10008.1.2.2');
    const meta = (await json(`${instanceUrl(r)}/metadata`))[0]!;
    expect(meta['00080020']).to.deep.equal({ vr: 'DA', Value: ['19970424'] });
    expect((await qido(`StudyDate=19970424&StudyInstanceUID=${r.studyInstanceUid}`)).length).to.equal(1);

    const frames = await fetch(`${instanceUrl(r)}/frames/1`, {
      headers: { ...auth, accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1' },
    });
    expect(frames.status, await frames.clone().text()).to.equal(200);
    expect((await readMultipartResponse(frames)).parts[0]!.body.length).to.equal(64 * 64 * 2);
    for (const ts of ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2.4.80']) {
      const inst = await fetch(instanceUrl(r), {
        headers: { ...auth, accept: `multipart/related; type="application/dicom"; transfer-syntax=${ts}` },
      });
      expect(inst.status, `${ts}: ${await inst.clone().text()}`).to.equal(200);
      const part = (await readMultipartResponse(inst)).parts[0]!;
      expect(part.body.toString('latin1', 128, 132)).to.equal('DICM');
    }
  });

  it('migration 016 removes the NUL padding of rows indexed before', async () => {
    const [pk] = (await node
      .db('patients')
      .insert({
        patient_id: 'PADDED-1',
        issuer_of_patient_id: '',
        patient_name: 'OLD^NAME\0',
        patient_name_norm: 'OLD^NAME\0',
        created_at: new Date().toISOString(),
        updated_at: new Date().toISOString(),
      })
      .returning('id')) as Array<{ id: number }>;
    await trimPaddedValues(node.db);
    const row = (await node.db('patients').where('id', pk!.id).first()) as { patient_name: string; patient_name_norm: string };
    expect(row).to.include({ patient_name: 'OLD^NAME', patient_name_norm: 'OLD^NAME' });
  });
});
