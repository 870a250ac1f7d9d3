import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import dcmjs, { type DicomDict, type NaturalizedDataset } from 'dcmjs';
import {
  CT_PHANTOM,
  SOP_CLASS,
  TRANSFER_SYNTAX,
  crValue,
  ctHu,
  makeCrImage,
  makeCtSeries,
  makeMrSeries,
  mrSignal,
  writeSeries,
  type GeneratedFile,
} from '../fixtures/generate.js';

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

// Reading implicit VR makes dcmjs's validation logger complain about the dictionary's "ox" VR of
// Pixel Data; that logger is a child the root level does not reach.
dcmjs.log.getLogger('validation.dcmjs').setLevel('silent');

const UID = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

function arrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

interface Parsed {
  file: DicomDict;
  meta: NaturalizedDataset;
  ds: NaturalizedDataset;
}

function parse(f: GeneratedFile): Parsed {
  const file = DicomMessage.readFile(arrayBuffer(f.bytes));
  return { file, meta: DicomMetaDictionary.naturalizeDataset(file.meta), ds: DicomMetaDictionary.naturalizeDataset(file.dict) };
}

function num(v: unknown): number {
  expect(v, 'numeric attribute').to.be.a('number');
  return v as number;
}

function nums(v: unknown): number[] {
  expect(v, 'multi-valued numeric attribute').to.be.an('array');
  return (v as unknown[]).map(num);
}

/**
 * Pixel Data from the un-naturalized dict: naturalizeDataset turns a single ArrayBuffer into a
 * Proxy'd one-element array that reports itself as an ArrayBuffer, which is awkward to check.
 */
function pixelBytes(p: Parsed): ArrayBuffer {
  const values = p.file.dict['7FE00010']?.Value;
  expect(values).to.be.an('array').with.lengthOf(1);
  expect(values![0]).to.be.instanceOf(ArrayBuffer);
  return values![0] as ArrayBuffer;
}

/** The stored value at (row, column), honouring PixelRepresentation. */
function storedAt(p: Parsed, row: number, col: number): number {
  const { ds } = p;
  const view = new DataView(pixelBytes(p));
  const offset = (row * num(ds.Columns) + col) * 2;
  return num(ds.PixelRepresentation) === 1 ? view.getInt16(offset, true) : view.getUint16(offset, true);
}

/** Row and column of the pixel whose centre is nearest to patient point (x, y) on an axial slice. */
function pixelNear(ds: NaturalizedDataset, x: number, y: number): { row: number; col: number; x: number; y: number } {
  const [x0, y0] = nums(ds.ImagePositionPatient);
  const [rowSpacing, colSpacing] = nums(ds.PixelSpacing);
  const col = Math.round((x - x0!) / colSpacing!);
  const row = Math.round((y - y0!) / rowSpacing!);
  return { row, col, x: x0! + col * colSpacing!, y: y0! + row * rowSpacing! };
}

/**
 * Walks the top-level elements of the dataset after the meta group using the given VR encoding
 * and returns their tags; throws if the bytes do not fit that encoding. Independent of dcmjs, so
 * it checks what dcmjs wrote rather than what dcmjs reads back.
 */
function walkDataset(bytes: Buffer, implicit: boolean): string[] {
  expect(
    bytes.subarray(0, 128).every((b) => b === 0),
    'zero preamble',
  ).to.equal(true);
  expect(bytes.toString('latin1', 128, 132)).to.equal('DICM');
  expect(bytes.readUInt16LE(132)).to.equal(0x0002);
  expect(bytes.readUInt16LE(134)).to.equal(0x0000);
  expect(bytes.toString('latin1', 136, 138), 'meta is explicit VR').to.equal('UL');
  let offset = 144 + bytes.readUInt32LE(140);
  const longVrs = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
  const tags: string[] = [];
  while (offset < bytes.length) {
    const group = bytes.readUInt16LE(offset);
    const element = bytes.readUInt16LE(offset + 2);
    const tag = `${group.toString(16).padStart(4, '0')}${element.toString(16).padStart(4, '0')}`.toUpperCase();
    if (group === 0x0002) throw new Error('meta element inside the dataset');
    if (tags.length > 0 && tag <= tags[tags.length - 1]!) throw new Error(`tag ${tag} out of order`);
    let length: number;
    if (implicit) {
      length = bytes.readUInt32LE(offset + 4);
      offset += 8;
    } else {
      const vr = bytes.toString('latin1', offset + 4, offset + 6);
      if (!/^[A-Z]{2}$/.test(vr)) throw new Error(`no VR at ${tag}`);
      if (longVrs.has(vr)) {
        length = bytes.readUInt32LE(offset + 8);
        offset += 12;
      } else {
        length = bytes.readUInt16LE(offset + 6);
        offset += 8;
      }
    }
    // The fixtures contain no sequences, so an undefined length is itself a sign of misreading.
    if (length === 0xffffffff || length % 2 === 1) throw new Error(`bad length ${length} at ${tag}`);
    offset += length;
    tags.push(tag);
  }
  if (offset !== bytes.length) throw new Error(`dataset overruns the file by ${offset - bytes.length} bytes`);
  return tags;
}

let tmp: string;

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'radiant-fixtures-'));
});

after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('fixtures: CT series', () => {
  const patient = { name: 'Müller^Jürgen=山田^太郎', id: 'PAT-Ü1', birthDate: '19650412', sex: 'M' as const };
  const files = makeCtSeries({
    seed: 'ct-basic',
    patient,
    accessionNumber: 'A123',
    studyDescription: 'CT THORAX',
    referringPhysicianName: 'Doe^John',
    seriesNumber: 7,
  });
  const parsed = files.map(parse);

  it('returns 20 Part 10 files whose meta and dataset agree with the returned UIDs', () => {
    expect(files).to.have.lengthOf(20);
    for (const [i, f] of files.entries()) {
      const { meta, ds } = parsed[i]!;
      expect(f.sopClassUid).to.equal(SOP_CLASS.ct);
      expect(f.transferSyntaxUid).to.equal(TRANSFER_SYNTAX.explicit);
      expect(meta.TransferSyntaxUID).to.equal(TRANSFER_SYNTAX.explicit);
      expect(meta.MediaStorageSOPClassUID).to.equal(SOP_CLASS.ct);
      expect(meta.MediaStorageSOPInstanceUID).to.equal(f.sopInstanceUid);
      expect(Array.from(new Uint8Array((meta.FileMetaInformationVersion as ArrayBuffer[])[0]!))).to.deep.equal([0, 1]);
      expect(meta.ImplementationClassUID).to.match(UID);
      expect(meta.ImplementationVersionName).to.be.a('string').and.not.equal('');
      expect(ds.SOPClassUID).to.equal(SOP_CLASS.ct);
      expect(ds.SOPInstanceUID).to.equal(f.sopInstanceUid);
      expect(ds.StudyInstanceUID).to.equal(f.studyInstanceUid);
      expect(ds.SeriesInstanceUID).to.equal(f.seriesInstanceUid);
      expect(ds.Modality).to.equal('CT');
      expect(ds.InstanceNumber).to.equal(i + 1);
      expect(ds.SeriesNumber).to.equal(7);
      expect([ds.Rows, ds.Columns]).to.deep.equal([64, 64]);
      for (const uid of [f.sopInstanceUid, f.seriesInstanceUid, f.studyInstanceUid, ds.FrameOfReferenceUID as string]) {
        expect(uid).to.match(UID).and.to.have.length.at.most(64);
      }
    }
    expect(new Set(files.map((f) => f.sopInstanceUid)).size).to.equal(20);
    expect(new Set(files.map((f) => f.seriesInstanceUid)).size).to.equal(1);
    expect(new Set(parsed.map((p) => p.ds.FrameOfReferenceUID)).size).to.equal(1);
  });

  it('carries the patient and study options, declaring UTF-8 for the non-ASCII name', () => {
    const { ds } = parsed[0]!;
    expect(ds.SpecificCharacterSet).to.equal('ISO_IR 192');
    expect(String(ds.PatientName)).to.equal(patient.name);
    expect(ds.PatientID).to.equal(patient.id);
    expect(ds.PatientBirthDate).to.equal('19650412');
    expect(ds.PatientSex).to.equal('M');
    expect(ds.AccessionNumber).to.equal('A123');
    expect(ds.StudyDescription).to.equal('CT THORAX');
    expect(String(ds.ReferringPhysicianName)).to.equal('Doe^John');
    expect(ds.BodyPartExamined).to.equal('CHEST');
    // The name really is UTF-8 in the file, not re-encoded or escaped.
    expect(files[0]!.bytes.includes(Buffer.from(patient.name, 'utf8'))).to.equal(true);
  });

  it('omits SpecificCharacterSet when all text is ASCII', () => {
    const { ds } = parse(makeCtSeries({ seed: 'ascii', slices: 1 })[0]!);
    expect(ds.SpecificCharacterSet).to.equal(undefined);
  });

  it('has consistent axial geometry: positions step along z by the slice spacing', () => {
    const ps = 350 / 64;
    for (const [i, { ds }] of parsed.entries()) {
      expect(nums(ds.ImageOrientationPatient)).to.deep.equal([1, 0, 0, 0, 1, 0]);
      expect(nums(ds.PixelSpacing)).to.deep.equal([ps, ps]);
      expect(num(ds.SliceThickness)).to.equal(5);
      const [x, y, z] = nums(ds.ImagePositionPatient);
      expect(x).to.be.closeTo(-31.5 * ps, 1e-9);
      expect(y).to.be.closeTo(-31.5 * ps, 1e-9);
      expect(z).to.be.closeTo(-47.5 + 5 * i, 1e-9);
      expect(num(ds.SliceLocation)).to.be.closeTo(z!, 1e-9);
      if (i > 0) {
        const prev = nums(parsed[i - 1]!.ds.ImagePositionPatient);
        expect(z! - prev[2]!).to.be.closeTo(num(ds.SpacingBetweenSlices), 1e-9);
      }
    }
  });

  it('honours size, overlapping spacing and a start position', () => {
    const big = makeCtSeries({ seed: 'geom', slices: 3, size: 512, sliceThickness: 2.5, spacingBetweenSlices: 1.25, firstSliceZ: -100 });
    const zs = big.map((f) => nums(parse(f).ds.ImagePositionPatient)[2]);
    expect(zs).to.deep.equal([-100, -98.75, -97.5]);
    const first = parse(big[0]!);
    const { ds } = first;
    expect([ds.Rows, ds.Columns]).to.deep.equal([512, 512]);
    expect(nums(ds.PixelSpacing)).to.deep.equal([0.68359375, 0.68359375]);
    expect(num(ds.SpacingBetweenSlices)).to.equal(1.25);
    expect(num(ds.SliceThickness)).to.equal(2.5);
    expect(pixelBytes(first).byteLength).to.equal(512 * 512 * 2);
  });

  for (const pixelRepresentation of ['signed', 'unsigned'] as const) {
    it(`decodes to the intended HU after rescale (${pixelRepresentation})`, () => {
      const series = makeCtSeries({ seed: 'hu', pixelRepresentation, slices: 21, spacingBetweenSlices: 5 });
      // Slice 10 of 21, centred on z = 0, passes through the lesion's centre.
      const slice = parse(series[10]!);
      const { ds } = slice;
      expect(num(ds.RescaleIntercept)).to.equal(-1024);
      expect(num(ds.RescaleSlope)).to.equal(1);
      expect(num(ds.PixelRepresentation)).to.equal(pixelRepresentation === 'signed' ? 1 : 0);
      expect(num(ds.BitsStored)).to.equal(pixelRepresentation === 'signed' ? 16 : 12);
      const z = nums(ds.ImagePositionPatient)[2]!;
      expect(z).to.equal(0);
      const p = CT_PHANTOM;
      const probes: Array<[string, number, number, number]> = [
        ['lesion', p.lesion.cx, p.lesion.cy, p.lesion.hu],
        ['spine', p.spine.cx, p.spine.cy, p.spine.hu],
        ['lung', p.lungs[1].cx, p.lungs[1].cy, p.lungHu],
        ['soft tissue', 0, 0, p.body.hu],
        ['air', -170, -170, p.airHu],
      ];
      for (const [what, x, y, hu] of probes) {
        const px = pixelNear(ds, x, y);
        const decoded = storedAt(slice, px.row, px.col) * num(ds.RescaleSlope) + num(ds.RescaleIntercept);
        expect(decoded, what).to.equal(hu);
        expect(ctHu(px.x, px.y, z), what).to.equal(hu);
      }
    });
  }

  it('adds reproducible noise when asked', () => {
    const a = makeCtSeries({ seed: 'n', slices: 1, noise: 20 })[0]!;
    const b = makeCtSeries({ seed: 'n', slices: 1, noise: 20 })[0]!;
    const exact = makeCtSeries({ seed: 'n', slices: 1 })[0]!;
    expect(a.bytes.equals(b.bytes)).to.equal(true);
    expect(Buffer.from(pixelBytes(parse(a))).equals(Buffer.from(pixelBytes(parse(exact))))).to.equal(false);
  });
});

describe('fixtures: transfer syntaxes', () => {
  const explicit = makeCtSeries({ seed: 'ts', slices: 2 });
  const implicit = makeCtSeries({ seed: 'ts', slices: 2, transferSyntax: 'implicit' });

  it('labels the meta with the transfer syntax actually used', () => {
    expect(implicit[0]!.transferSyntaxUid).to.equal('1.2.840.10008.1.2');
    expect(parse(implicit[0]!).meta.TransferSyntaxUID).to.equal('1.2.840.10008.1.2');
    expect(explicit[0]!.transferSyntaxUid).to.equal('1.2.840.10008.1.2.1');
    expect(parse(explicit[0]!).meta.TransferSyntaxUID).to.equal('1.2.840.10008.1.2.1');
  });

  it('encodes the implicit dataset without VRs and the explicit one with them', () => {
    const implicitTags = walkDataset(implicit[0]!.bytes, true);
    const explicitTags = walkDataset(explicit[0]!.bytes, false);
    expect(implicitTags).to.deep.equal(explicitTags);
    expect(implicitTags).to.include('7FE00010');
    expect(() => walkDataset(implicit[0]!.bytes, false)).to.throw();
    expect(() => walkDataset(explicit[0]!.bytes, true)).to.throw();
    // Only Pixel Data has a long-form VR; the 2-byte TS UID difference is in the meta.
    expect(explicit[0]!.bytes.length - implicit[0]!.bytes.length).to.equal(4 + 2);
  });

  it('holds the same content either way', () => {
    for (let i = 0; i < 2; i++) {
      const pe = parse(explicit[i]!);
      const pm = parse(implicit[i]!);
      const [e, m] = [pe.ds, pm.ds];
      expect(implicit[i]!.sopInstanceUid).to.equal(explicit[i]!.sopInstanceUid);
      for (const k of ['SOPInstanceUID', 'StudyInstanceUID', 'PatientID', 'ImagePositionPatient', 'Rows', 'RescaleIntercept']) {
        expect(m[k], k).to.deep.equal(e[k]);
      }
      expect(Buffer.from(pixelBytes(pm)).equals(Buffer.from(pixelBytes(pe)))).to.equal(true);
    }
  });
});

describe('fixtures: UIDs and studies', () => {
  it('is byte-for-byte deterministic for a seed', () => {
    const a = makeCtSeries({ seed: 42, slices: 2 });
    const b = makeCtSeries({ seed: 42, slices: 2 });
    for (const [i, f] of a.entries()) expect(f.bytes.equals(b[i]!.bytes), `file ${i}`).to.equal(true);
    expect(makeCtSeries({ seed: 43, slices: 1 })[0]!.studyInstanceUid).not.to.equal(a[0]!.studyInstanceUid);
  });

  it('gives different content different UIDs under one seed, and one study for the same study options', () => {
    const base = makeCtSeries({ seed: 'k', slices: 1 })[0]!;
    const otherPatient = makeCtSeries({ seed: 'k', slices: 1, patient: { id: 'OTHER' } })[0]!;
    const otherPixels = makeCtSeries({ seed: 'k', slices: 1, pixelRepresentation: 'unsigned' })[0]!;
    const implicit = makeCtSeries({ seed: 'k', slices: 1, transferSyntax: 'implicit' })[0]!;
    expect(otherPatient.studyInstanceUid).not.to.equal(base.studyInstanceUid);
    expect(otherPatient.sopInstanceUid).not.to.equal(base.sopInstanceUid);
    expect(otherPixels.studyInstanceUid).to.equal(base.studyInstanceUid);
    expect(otherPixels.seriesInstanceUid).not.to.equal(base.seriesInstanceUid);
    expect(otherPixels.sopInstanceUid).not.to.equal(base.sopInstanceUid);
    // The same instance in another transfer syntax is still the same instance.
    expect(implicit.sopInstanceUid).to.equal(base.sopInstanceUid);
    expect(makeMrSeries({ seed: 'k', slices: 1 })[0]!.studyInstanceUid).to.equal(base.studyInstanceUid);
  });

  it('draws random UIDs without a seed', () => {
    const a = makeCtSeries({ slices: 1 })[0]!;
    const b = makeCtSeries({ slices: 1 })[0]!;
    expect(a.studyInstanceUid).not.to.equal(b.studyInstanceUid);
    expect(a.sopInstanceUid).not.to.equal(b.sopInstanceUid);
    for (const uid of [a.studyInstanceUid, a.seriesInstanceUid, a.sopInstanceUid]) expect(uid).to.match(/^2\.25\.[1-9][0-9]*$/);
  });

  it('puts several series in one study when the study UID is shared', () => {
    const studyInstanceUid = '2.25.1234567890';
    const ct = makeCtSeries({ seed: 's', studyInstanceUid, slices: 2 });
    const mr = makeMrSeries({ seed: 's', studyInstanceUid, slices: 2 });
    const cr = makeCrImage({ seed: 's', studyInstanceUid });
    const all = [...ct, ...mr, ...cr];
    expect(new Set(all.map((f) => f.studyInstanceUid))).to.deep.equal(new Set([studyInstanceUid]));
    expect(new Set(all.map((f) => f.seriesInstanceUid)).size).to.equal(3);
    expect(new Set(all.map((f) => f.sopInstanceUid)).size).to.equal(5);
    expect(new Set(all.map((f) => parse(f).ds.StudyInstanceUID))).to.deep.equal(new Set([studyInstanceUid]));
    // Two CT series of one seeded study must not collide either.
    const ct2 = makeCtSeries({ seed: 's', studyInstanceUid, slices: 2, seriesNumber: 2 });
    expect(ct2[0]!.seriesInstanceUid).not.to.equal(ct[0]!.seriesInstanceUid);
    expect(ct2[0]!.sopInstanceUid).not.to.equal(ct[0]!.sopInstanceUid);
  });
});

describe('fixtures: MR series', () => {
  const files = makeMrSeries({ seed: 'mr', slices: 5, weighting: 'T2', magneticFieldStrength: 3 });

  it('has the MR Image attributes', () => {
    const { meta, ds } = parse(files[0]!);
    expect(meta.MediaStorageSOPClassUID).to.equal(SOP_CLASS.mr);
    expect(ds.SOPClassUID).to.equal('1.2.840.10008.5.1.4.1.1.4');
    expect(ds.Modality).to.equal('MR');
    expect(ds.ScanningSequence).to.equal('SE');
    expect(ds.SequenceVariant).to.deep.equal(['SK', 'SP']);
    expect(ds.ScanOptions).to.equal('PFP');
    expect(ds.MRAcquisitionType).to.equal('2D');
    expect(num(ds.EchoTime)).to.equal(100);
    expect(num(ds.RepetitionTime)).to.equal(4000);
    expect(num(ds.EchoTrainLength)).to.equal(16);
    expect(num(ds.MagneticFieldStrength)).to.equal(3);
    expect(num(ds.ImagingFrequency)).to.be.closeTo(127.73, 0.01);
    expect(ds.BodyPartExamined).to.equal('HEAD');
  });

  it('leaves a gap between slices and encodes the phantom signal', () => {
    const parsed = files.map(parse);
    const zs = parsed.map((p) => nums(p.ds.ImagePositionPatient)[2]!);
    expect(zs).to.deep.equal([-12, -6, 0, 6, 12]);
    expect(num(parsed[0]!.ds.SpacingBetweenSlices)).to.equal(6);
    const mid = parsed[2]!;
    const { ds } = mid;
    const px = pixelNear(ds, 30, -30);
    expect(storedAt(mid, px.row, px.col))
      .to.equal(mrSignal('T2', px.x, px.y, 0))
      .and.to.equal(1300);
    const csf = pixelNear(ds, 12, -5);
    expect(storedAt(mid, csf.row, csf.col)).to.equal(1600);
  });
});

describe('fixtures: CR image', () => {
  it('is a single PA chest image; MONOCHROME1 stores the inverted values', () => {
    const mono2 = makeCrImage({ seed: 'cr', size: 128 });
    const mono1 = makeCrImage({ seed: 'cr', size: 128, photometricInterpretation: 'MONOCHROME1', transferSyntax: 'implicit' });
    expect(mono2).to.have.lengthOf(1);
    const p2 = parse(mono2[0]!);
    const p1 = parse(mono1[0]!);
    const [d2, d1] = [p2.ds, p1.ds];
    expect(mono1[0]!.transferSyntaxUid).to.equal(TRANSFER_SYNTAX.implicit);
    expect(d2.SOPClassUID).to.equal('1.2.840.10008.5.1.4.1.1.1');
    expect(d2.Modality).to.equal('CR');
    expect(d2.BodyPartExamined).to.equal('CHEST');
    expect(d2.ViewPosition).to.equal('PA');
    expect(d2.PatientOrientation).to.deep.equal(['L', 'F']);
    expect(d2.PhotometricInterpretation).to.equal('MONOCHROME2');
    expect(d1.PhotometricInterpretation).to.equal('MONOCHROME1');
    const pitch = nums(d2.ImagerPixelSpacing)[0]!;
    expect(pitch).to.equal(430 / 128);
    // The spine, at the image's centre column.
    const [row, col] = [64, 64];
    const x = (col - 63.5) * pitch;
    const y = (row - 63.5) * pitch;
    expect(storedAt(p2, row, col))
      .to.equal(crValue(x, y))
      .and.to.equal(2600);
    expect(storedAt(p1, row, col)).to.equal(4095 - 2600);
  });
});

describe('fixtures: writeSeries', () => {
  it('writes <dir>/<n>.dcm in order, creating the folder', async () => {
    const files = makeCtSeries({ seed: 'w', slices: 3 });
    const dir = path.join(tmp, 'nested', 'ct');
    const paths = await writeSeries(dir, files);
    expect(paths).to.deep.equal([1, 2, 3].map((n) => path.join(dir, `${n}.dcm`)));
    for (const [i, p] of paths.entries()) expect((await fs.readFile(p)).equals(files[i]!.bytes)).to.equal(true);
  });
});

describe('fixtures: CLI', () => {
  it('writes one study with a folder per series', async function () {
    const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cli.js');
    const out = path.join(tmp, 'cli');
    const r = spawnSync(process.execPath, [cli, out, '--kind', 'all', '--slices', '3', '--size', '32', '--implicit', '--seed', 'cli'], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).to.equal(0);
    const names = await Promise.all(['ct', 'mr', 'cr'].map((k) => fs.readdir(path.join(out, k))));
    expect(names.map((n) => n.sort())).to.deep.equal([['1.dcm', '2.dcm', '3.dcm'], ['1.dcm', '2.dcm', '3.dcm'], ['1.dcm']]);
    const studies = new Set<unknown>();
    for (const k of ['ct', 'mr', 'cr']) {
      const bytes = await fs.readFile(path.join(out, k, '1.dcm'));
      const file = DicomMessage.readFile(arrayBuffer(bytes));
      const ds = DicomMetaDictionary.naturalizeDataset(file.dict);
      expect(DicomMetaDictionary.naturalizeDataset(file.meta).TransferSyntaxUID).to.equal(TRANSFER_SYNTAX.implicit);
      expect(ds.Rows).to.equal(32);
      studies.add(ds.StudyInstanceUID);
    }
    expect(studies.size).to.equal(1);
    expect(spawnSync(process.execPath, [cli, out, '--kind', 'xr'], { encoding: 'utf8' }).status).to.equal(2);
  });
});

describe('fixtures: dciodvfy', () => {
  /** Runs dciodvfy (dicom3tools); its absence is a failure, since CI is meant to have it. */
  async function verify(name: string, f: GeneratedFile): Promise<{ output: string; errors: string[] }> {
    const p = path.join(tmp, `${name}.dcm`);
    await fs.writeFile(p, f.bytes);
    const r = spawnSync('dciodvfy', [p], { encoding: 'utf8' });
    if (r.error) throw new Error(`dciodvfy must be on PATH: ${r.error.message}`);
    const output = `${r.stdout}${r.stderr}`;
    return { output, errors: output.split('\n').filter((l) => /^\s*Error/.test(l)) };
  }

  const cases: Array<[string, string, () => GeneratedFile]> = [
    ['ct-explicit-signed', 'CTImage', () => makeCtSeries({ seed: 'v', slices: 1, patient: { name: 'Ærø^Åse=山田^花子' } })[0]!],
    [
      'ct-implicit-unsigned',
      'CTImage',
      () => makeCtSeries({ seed: 'v', slices: 1, transferSyntax: 'implicit', pixelRepresentation: 'unsigned' })[0]!,
    ],
    ['mr-t1', 'MRImage', () => makeMrSeries({ seed: 'v', slices: 1 })[0]!],
    ['mr-t2-implicit', 'MRImage', () => makeMrSeries({ seed: 'v', slices: 1, weighting: 'T2', transferSyntax: 'implicit' })[0]!],
    ['cr-mono1', 'CRImage', () => makeCrImage({ seed: 'v', photometricInterpretation: 'MONOCHROME1' })[0]!],
    ['cr-mono2-implicit', 'CRImage', () => makeCrImage({ seed: 'v', transferSyntax: 'implicit' })[0]!],
  ];
  for (const [name, iod, make] of cases) {
    it(`${name} verifies as ${iod} with no errors`, async () => {
      const { output, errors } = await verify(name, make());
      expect(output, 'dciodvfy recognised the IOD').to.include(iod);
      expect(errors, output).to.deep.equal([]);
    });
  }

  it('a multi-series study passes dcentvfy (consistent patient/study/series entities)', async () => {
    const dir = path.join(tmp, 'entities');
    const study = { seed: 'e', patient: { name: 'Ærø^Åse' } };
    const paths = [
      ...(await writeSeries(path.join(dir, 'ct'), makeCtSeries({ ...study, slices: 3 }))),
      ...(await writeSeries(path.join(dir, 'mr'), makeMrSeries({ ...study, slices: 3 }))),
      ...(await writeSeries(path.join(dir, 'cr'), makeCrImage(study))),
    ];
    const r = spawnSync('dcentvfy', paths, { encoding: 'utf8' });
    if (r.error) throw new Error(`dcentvfy (dicom3tools) must be on PATH: ${r.error.message}`);
    const output = `${r.stdout}${r.stderr}`;
    expect(
      output.split('\n').filter((l) => /^\s*Error/.test(l)),
      output,
    ).to.deep.equal([]);
  });

  it('does report errors (so the check above can fail)', async () => {
    const f = makeCtSeries({ seed: 'v', slices: 1 })[0]!;
    const file = DicomMessage.readFile(arrayBuffer(f.bytes));
    delete file.dict['00100020'];
    delete file.dict['00280100'];
    const { errors } = await verify('broken', { ...f, bytes: Buffer.from(file.write()) });
    expect(errors.join('\n')).to.include('PatientID').and.to.include('BitsAllocated');
  });
});
