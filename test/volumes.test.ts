import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import dcmjs, { type DicomJsonDataset } from 'dcmjs';
import type { DicomJsonDataset as JsonDataset } from '../src/dicom/dicom-json.js';
import { toDicomJsonDataset } from '../src/dicom/metadata-json.js';
import { makeCrImage, makeCtSeries, type GeneratedFile } from '../fixtures/generate.js';
import { seededUniform } from '../fixtures/random.js';
import { randomUid } from '../fixtures/uids.js';
import { assembleVolume, huOf, type AssembledVolume } from '../src/volumes/assemble.js';
import { loadStudySeries, type SeriesCandidate } from '../src/volumes/series-loader.js';
import { selectSeries } from '../src/volumes/series-selection.js';
import { sliceHeadersFromJson, type SliceHeader } from '../src/volumes/slice-header.js';
import { getVolume, saveVolume } from '../src/volumes/volume-store.js';
import { corpusRoot } from './helpers/corpus.js';
import { startTestCore, type TestCore } from './helpers/node.js';
import { onBothDatabases } from './helpers/postgres.js';
import { rewrite } from './helpers/rewrite.js';

/**
 * Series selection and volume assembly for the analysis pipeline, on real data: the corpus chest
 * CT and sagittal brain MR ingested into a node and read back through the series metadata cache,
 * their order and spacing checked against each file's own Image Position (read here with dcmjs,
 * independently of the code under test); Enhanced CT/MR frames; generated series with a missing
 * slice, a duplicate, mixed sizes; selection in a study with a localizer, an SR and a PDF.
 */

const CT_DIR = 'ct-series-chest-99';
const MR_DIR = 'mr-series-brain-sag-192';

interface FileGeometry {
  sop: string;
  study: string;
  series: string;
  ipp: number[];
  iop: number[];
  pixelSpacing: number[];
}

function readDict(file: string | Buffer): DicomJsonDataset {
  const buf = typeof file === 'string' ? fs.readFileSync(file) : file;
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
  return dcmjs.data.DicomMessage.readFile(ab, { untilTag: '7FE00010', includeUntilTagValue: false }).dict;
}

const nums = (d: DicomJsonDataset, tag: string): number[] => (d[tag]?.Value ?? []).map((v) => Number(v));
const first = (d: DicomJsonDataset, tag: string): string => String(d[tag]?.Value?.[0] ?? '');

function fileGeometry(file: string): FileGeometry {
  const d = readDict(file);
  return {
    sop: first(d, '00080018'),
    study: first(d, '0020000D'),
    series: first(d, '0020000E'),
    ipp: nums(d, '00200032'),
    iop: nums(d, '00200037'),
    pixelSpacing: nums(d, '00280030'),
  };
}

/** The expected order and spacing, computed from the files alone. */
function expectedStack(files: FileGeometry[]): { order: string[]; positions: number[]; spacing: number; normal: number[] } {
  const o = files[0]!.iop;
  const normal = [o[1]! * o[5]! - o[2]! * o[4]!, o[2]! * o[3]! - o[0]! * o[5]!, o[0]! * o[4]! - o[1]! * o[3]!];
  const len = Math.hypot(normal[0]!, normal[1]!, normal[2]!);
  const n = normal.map((x) => x / len);
  const placed = files.map((f) => ({ sop: f.sop, p: f.ipp[0]! * n[0]! + f.ipp[1]! * n[1]! + f.ipp[2]! * n[2]! })).sort((a, b) => a.p - b.p);
  const gaps = placed
    .slice(1)
    .map((x, i) => x.p - placed[i]!.p)
    .sort((a, b) => a - b);
  const m = gaps.length >> 1;
  const spacing = gaps.length % 2 ? gaps[m]! : (gaps[m - 1]! + gaps[m]!) / 2;
  return { order: placed.map((x) => x.sop), positions: placed.map((x) => x.p), spacing, normal: n };
}

function corpusFiles(dir: string): string[] {
  return fs
    .readdirSync(path.join(corpusRoot, dir))
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => path.join(corpusRoot, dir, f));
}

/** Generated or corpus bytes to the DICOM JSON our metadata cache holds. */
function jsonOf(bytes: Buffer): JsonDataset {
  return toDicomJsonDataset(readDict(bytes), { uri: '/x', pixelVr: 'OW' });
}

function headersOf(files: GeneratedFile[]): SliceHeader[] {
  return files.flatMap((f) => sliceHeadersFromJson(jsonOf(f.bytes)));
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const rnd = seededUniform(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

async function ingestBytes(core: TestCore, files: Iterable<Buffer>): Promise<void> {
  for (const bytes of files) {
    const r = await core.ingestor.ingestStream(Readable.from([bytes]), { source: 'import' });
    expect(r.outcome).to.be.oneOf(['stored', 'replaced']);
  }
}

/** Sets multi-valued elements (rewrite() sets one value, and CS/DS values are short). */
function setValues(bytes: Buffer, changes: Record<string, Array<string | number>>): Buffer {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  const dict = dcmjs.data.DicomMessage.readFile(ab);
  for (const [tag, values] of Object.entries(changes)) dict.dict[tag] = { vr: dict.dict[tag]!.vr, Value: values };
  return Buffer.from(dict.write());
}

const codes = (v: AssembledVolume) => v.problems.map((p) => p.code);

describe('volumes: series selection and volume assembly', function () {
  this.timeout(300_000);
  let core: TestCore;
  before(async () => {
    core = await startTestCore();
  });
  after(async () => {
    await core?.cleanup();
  });

  describe('corpus chest CT', () => {
    let files: FileGeometry[];
    let cands: SeriesCandidate[];
    let vol: AssembledVolume;

    before(async () => {
      const paths = corpusFiles(CT_DIR);
      files = paths.map(fileGeometry);
      for (const p of paths) await core.ingestor.ingestFile(p, false, { source: 'import' });
      const t0 = performance.now();
      cands = await loadStudySeries(core.db, core.storage, files[0]!.study);
      const t1 = performance.now();
      const sel = selectSeries(cands);
      const t2 = performance.now();
      vol = assembleVolume(sel.selected!);
      const t3 = performance.now();
      // Again, with the series metadata now cached.
      const w0 = performance.now();
      const again = await loadStudySeries(core.db, core.storage, files[0]!.study);
      const w1 = performance.now();
      assembleVolume(selectSeries(again).selected!);
      const w2 = performance.now();
      console.log(
        `      corpus CT (${paths.length} slices): loadStudySeries ${(t1 - t0).toFixed(1)} ms (metadata built), ` +
          `selectSeries ${(t2 - t1).toFixed(2)} ms, assembleVolume ${(t3 - t2).toFixed(2)} ms; ` +
          `cached: loadStudySeries ${(w1 - w0).toFixed(1)} ms, select+assemble ${(w2 - w1).toFixed(2)} ms`,
      );
    });

    it('loads the series with one slice header per file and selects it', () => {
      expect(cands).to.have.length(1);
      const c = cands[0]!;
      expect(c.seriesInstanceUid).to.equal(files[0]!.series);
      expect(c.modality).to.equal('CT');
      expect(c.seriesDescription).to.equal('LUNG 3.0  B70f');
      expect(c.slices).to.have.length(files.length);
      expect(new Set(c.slices.map((s) => s.sopInstanceUid))).to.deep.equal(new Set(files.map((f) => f.sop)));
      expect(vol.seriesInstanceUid).to.equal(files[0]!.series);
    });

    it('orders the slices along the normal as the files place them, with their spacing', () => {
      const exp = expectedStack(files);
      expect(vol.kind).to.equal('volume');
      expect(vol.slices.map((s) => s.sopInstanceUid)).to.deep.equal(exp.order);
      expect(vol.positions).to.have.length(files.length);
      vol.positions.forEach((p, i) => expect(p).to.be.closeTo(exp.positions[i]!, 1e-6));
      expect(vol.spacing.slice).to.be.closeTo(exp.spacing, 1e-6);
      expect(vol.dimensions).to.deep.equal({ rows: 512, columns: 512, slices: files.length });
      expect(vol.spacing.row).to.equal(files[0]!.pixelSpacing[0]);
      expect(vol.spacing.column).to.equal(files[0]!.pixelSpacing[1]);
      vol.normal!.forEach((x, i) => expect(x).to.be.closeTo(exp.normal[i]!, 1e-9));
      const firstFile = files.find((f) => f.sop === exp.order[0])!;
      expect(vol.origin).to.deep.equal(firstFile.ipp);
      expect(vol.problems).to.deep.equal([]);
    });

    it("applies the files' rescale in huOf", () => {
      const s = vol.slices[0]!;
      const d = readDict(path.join(corpusRoot, CT_DIR, fs.readdirSync(path.join(corpusRoot, CT_DIR)).sort()[0]!));
      const slope = Number(first(d, '00281053'));
      const intercept = Number(first(d, '00281052'));
      expect(s.rescaleSlope).to.equal(slope);
      expect(s.rescaleIntercept).to.equal(intercept);
      expect(huOf(s, 1024)).to.equal(1024 * slope + intercept);
    });

    it('gives the same order for a shuffled copy of the slices', () => {
      for (const seed of [1, 2, 3]) {
        const v = assembleVolume(shuffled(cands[0]!.slices, seed));
        expect(v.slices.map((s) => s.sopInstanceUid)).to.deep.equal(vol.slices.map((s) => s.sopInstanceUid));
        expect(v.problems).to.deep.equal([]);
      }
    });
  });

  describe('corpus sagittal brain MR', () => {
    let files: FileGeometry[];
    let vol: AssembledVolume;

    before(async () => {
      const paths = corpusFiles(MR_DIR);
      files = paths.map(fileGeometry);
      for (const p of paths) await core.ingestor.ingestFile(p, false, { source: 'import' });
      const cands = await loadStudySeries(core.db, core.storage, files[0]!.study);
      const sel = selectSeries(cands);
      expect(sel.selected?.seriesInstanceUid).to.equal(files[0]!.series);
      vol = assembleVolume(sel.selected!);
    });

    it("assembles all slices in file geometry order with the files' spacing", () => {
      const exp = expectedStack(files);
      expect(vol.dimensions.slices).to.equal(files.length);
      expect(vol.slices.map((s) => s.sopInstanceUid)).to.deep.equal(exp.order);
      expect(vol.spacing.slice).to.be.closeTo(exp.spacing, 1e-6);
      vol.positions.forEach((p, i) => expect(p).to.be.closeTo(exp.positions[i]!, 1e-6));
      expect(codes(vol)).to.not.include('gap');
      expect(codes(vol)).to.not.include('duplicate_position');
    });

    it('is sagittal: the normal lies near the x axis', () => {
      expect(Math.abs(vol.normal![0])).to.be.greaterThan(0.9);
      expect(Math.abs(vol.normal![2])).to.be.lessThan(0.3);
    });
  });

  describe('generated series', () => {
    const ct = makeCtSeries({ seed: 'volumes-gen', slices: 12, size: 32, sliceThickness: 2.5 });
    const headers = headersOf(ct);

    it("orders a shuffled series like the ordered one, at the generator's spacing", () => {
      // Instance Numbers scrambled too: the order must come from the geometry alone.
      const renumbered = shuffled(headers, 7).map((h, i) => ({ ...h, instanceNumber: i + 1 }));
      const v = assembleVolume(renumbered);
      expect(v.slices.map((s) => s.sopInstanceUid)).to.deep.equal(ct.map((f) => f.sopInstanceUid));
      expect(v.spacing.slice).to.be.closeTo(2.5, 1e-9);
      expect(v.problems).to.deep.equal([]);
    });

    it('reports a missing slice as a gap naming its neighbours', () => {
      const v = assembleVolume(headers.filter((_, i) => i !== 5));
      expect(codes(v)).to.deep.equal(['gap']);
      expect(v.problems[0]!.sopInstanceUids).to.deep.equal([ct[4]!.sopInstanceUid, ct[6]!.sopInstanceUid]);
      expect(v.problems[0]!.detail).to.match(/about 1 slice/);
      expect(v.dimensions.slices).to.equal(11);
      expect(v.spacing.slice).to.be.closeTo(2.5, 1e-9);
    });

    it('drops a slice at an already occupied position and reports which', () => {
      const copyUid = randomUid();
      const copy = headersOf([{ ...ct[3]!, bytes: rewrite(ct[3]!.bytes, { '00080018': copyUid, '00200013': '99' }) }]);
      const v = assembleVolume([...headers, ...copy]);
      expect(codes(v)).to.deep.equal(['duplicate_position']);
      expect(v.problems[0]!.sopInstanceUids).to.deep.equal([copyUid, ct[3]!.sopInstanceUid]);
      expect(v.slices.map((s) => s.sopInstanceUid)).to.deep.equal(ct.map((f) => f.sopInstanceUid));
    });

    it('reports slices of another size', () => {
      const small = makeCtSeries({
        slices: 2,
        size: 16,
        sliceThickness: 2.5,
        seriesInstanceUid: ct[0]!.seriesInstanceUid,
        firstSliceZ: 100,
      });
      const v = assembleVolume([...headers, ...headersOf(small)]);
      expect(codes(v)).to.include('mixed_size');
      const p = v.problems.find((x) => x.code === 'mixed_size')!;
      expect(p.sopInstanceUids).to.have.members(small.map((f) => f.sopInstanceUid));
      expect(v.dimensions).to.include({ rows: 32, columns: 32 });
    });

    it('reports another orientation, missing geometry and irregular spacing', () => {
      const tilted = headers.map((h, i) =>
        i === 2 ? { ...h, imageOrientationPatient: [1, 0, 0, 0, 0, -1] as SliceHeader['imageOrientationPatient'] } : h,
      );
      const vt = assembleVolume(tilted);
      expect(codes(vt)).to.include('mixed_orientation');
      expect(vt.problems.find((p) => p.code === 'mixed_orientation')!.sopInstanceUids).to.deep.equal([ct[2]!.sopInstanceUid]);

      const noPos = shuffled(headers, 3).map((h, i) => (i === 0 ? { ...h, imagePositionPatient: undefined } : h));
      const vn = assembleVolume(noPos);
      expect(codes(vn)).to.deep.equal(['no_geometry']);
      expect(vn.slices.map((s) => s.instanceNumber)).to.deep.equal(ct.map((_, i) => i + 1));
      expect(vn.positions).to.deep.equal([]);

      const moved = headers.map((h, i) =>
        i === 6
          ? {
              ...h,
              imagePositionPatient: [h.imagePositionPatient![0], h.imagePositionPatient![1], h.imagePositionPatient![2] + 0.8] as [
                number,
                number,
                number,
              ],
            }
          : h,
      );
      const vm = assembleVolume(moved);
      expect(codes(vm)).to.deep.equal(['irregular_spacing']);
    });
  });

  describe('multi-frame objects', () => {
    it('expands Enhanced CT per frame with geometry, rescale and window from the functional groups', async () => {
      const file = path.join(corpusRoot, 'multiframe/eCT_Supplemental.dcm');
      const d = readDict(file);
      await core.ingestor.ingestFile(file, false, { source: 'import' });
      const [c] = await loadStudySeries(core.db, core.storage, first(d, '0020000D'));
      const perFrame = (d['52009230']!.Value ?? []) as DicomJsonDataset[];
      const shared = (d['52009229']!.Value ?? [])[0] as DicomJsonDataset;
      const item = (ds: DicomJsonDataset, seq: string) => (ds[seq]!.Value ?? [])[0] as DicomJsonDataset;
      expect(c!.slices).to.have.length(perFrame.length).and.length.greaterThan(1);
      c!.slices.forEach((s, i) => {
        expect(s.frameNumber).to.equal(i + 1);
        expect(s.imagePositionPatient).to.deep.equal(nums(item(perFrame[i]!, '00209113'), '00200032'));
        expect(s.imageOrientationPatient).to.deep.equal(nums(item(shared, '00209116'), '00200037'));
        expect(s.pixelSpacing).to.deep.equal(nums(item(shared, '00289110'), '00280030'));
        expect(s.sliceThickness).to.equal(nums(item(shared, '00289110'), '00180050')[0]);
        expect(s.rescaleIntercept).to.equal(nums(item(shared, '00289145'), '00281052')[0]);
        expect(s.rescaleSlope).to.equal(nums(item(shared, '00289145'), '00281053')[0]);
        expect(s.windowCenter).to.equal(nums(item(shared, '00289132'), '00281050')[0]);
        expect(s.windowWidth).to.equal(nums(item(shared, '00289132'), '00281051')[0]);
      });
      const v = assembleVolume(c!);
      const exp = expectedStack(
        c!.slices.map((s, i) => ({
          sop: String(i + 1),
          study: '',
          series: '',
          ipp: nums(item(perFrame[i]!, '00209113'), '00200032'),
          iop: nums(item(shared, '00209116'), '00200037'),
          pixelSpacing: [],
        })),
      );
      expect(v.slices.map((s) => String(s.frameNumber))).to.deep.equal(exp.order);
      expect(v.spacing.slice).to.be.closeTo(exp.spacing, 1e-9);
      expect(v.problems).to.deep.equal([]);
    });

    it('expands Enhanced MR frames, ordered by frame without geometry', async () => {
      const file = path.join(corpusRoot, 'multiframe/emri_small.dcm');
      const d = readDict(file);
      await core.ingestor.ingestFile(file, false, { source: 'import' });
      const [c] = await loadStudySeries(core.db, core.storage, first(d, '0020000D'));
      const frames = Number(first(d, '00280008'));
      expect(frames).to.be.greaterThan(1);
      expect(c!.slices.map((s) => s.frameNumber)).to.deep.equal(Array.from({ length: frames }, (_, i) => i + 1));
      expect(new Set(c!.slices.map((s) => s.sopInstanceUid)).size).to.equal(1);
      // This object carries no Plane Position functional group: there is nothing to sort by.
      expect('52009230' in d).to.equal(false);
      const v = assembleVolume(c!);
      expect(codes(v)).to.deep.equal(['no_geometry']);
      expect(v.slices.map((s) => s.frameNumber)).to.deep.equal(c!.slices.map((s) => s.frameNumber));
    });

    it("takes each frame's own rescale and window from the Per-Frame Functional Groups", () => {
      const buf = fs.readFileSync(path.join(corpusRoot, 'multiframe/MultiframeWindowing.dcm'));
      const d = readDict(buf);
      const perFrame = (d['52009230']!.Value ?? []) as DicomJsonDataset[];
      const slices = sliceHeadersFromJson(jsonOf(buf));
      expect(slices).to.have.length(perFrame.length);
      const distinct = new Set<string>();
      slices.forEach((s, i) => {
        const t = (perFrame[i]!['00289145']!.Value ?? [])[0] as DicomJsonDataset;
        expect(s.rescaleIntercept).to.equal(nums(t, '00281052')[0]);
        expect(s.rescaleSlope).to.equal(nums(t, '00281053')[0]);
        expect(huOf(s, 10)).to.equal(10 * nums(t, '00281053')[0]! + nums(t, '00281052')[0]!);
        distinct.add(`${s.rescaleSlope}/${s.rescaleIntercept}`);
        const voi = perFrame[i]!['00289132'];
        if (voi) expect(s.windowCenter).to.equal(nums((voi.Value ?? [])[0] as DicomJsonDataset, '00281050')[0]);
      });
      expect(distinct.size).to.be.greaterThan(1);
    });
  });

  describe('series selection', () => {
    const study = randomUid();
    const axial = makeCtSeries({ studyInstanceUid: study, seriesNumber: 2, slices: 20, size: 32, seriesDescription: 'ABDOMEN 5.0 B30f' });
    // A longer but coronal series (a reformat as scanners send them): axial must still win.
    const coronal = makeCtSeries({ studyInstanceUid: study, seriesNumber: 3, slices: 30, size: 32, seriesDescription: 'COR 3.0 B30f' }).map(
      (f, i) => ({
        ...f,
        bytes: setValues(f.bytes, { '00200037': [1, 0, 0, 0, 0, -1], '00200032': [-100, -50 + i * 3, 100] }),
      }),
    );
    const scout = makeCtSeries({ studyInstanceUid: study, seriesNumber: 1, slices: 2, size: 32 }).map((f) => ({
      ...f,
      bytes: setValues(f.bytes, { '00080008': ['ORIGINAL', 'PRIMARY', 'LOCALIZER'] }),
    }));
    const intoStudy = (rel: string, studyUid: string) =>
      rewrite(fs.readFileSync(path.join(corpusRoot, rel)), { '0020000D': studyUid, '00100020': 'FIXTURE-0001' });
    let result: ReturnType<typeof selectSeries>;
    let cands: SeriesCandidate[];

    before(async () => {
      await ingestBytes(
        core,
        [...axial, ...coronal, ...scout].map((f) => f.bytes),
      );
      await ingestBytes(core, [intoStudy('non-image/sr.dcm', study), intoStudy('non-image/sample-pdf.dcm', study)]);
      cands = await loadStudySeries(core.db, core.storage, study);
      result = selectSeries(cands);
    });

    it('picks the axial series, ranks the coronal one below it', () => {
      expect(cands).to.have.length(5);
      expect(result.selected?.seriesInstanceUid).to.equal(axial[0]!.seriesInstanceUid);
      expect(result.ranked.map((r) => r.candidate.seriesInstanceUid)).to.deep.equal([
        axial[0]!.seriesInstanceUid,
        coronal[0]!.seriesInstanceUid,
      ]);
      expect(result.ranked[0]!.score).to.be.greaterThan(result.ranked[1]!.score);
      expect(result.ranked[0]!.why.join(' ')).to.match(/axial/);
      expect(result.ranked[1]!.why.join(' ')).to.match(/not axial/);
    });

    it('gives a reason for every skipped series', () => {
      const reasons = new Map(result.skipped.map((s) => [s.seriesInstanceUid, s.reason]));
      expect(reasons.size).to.equal(3);
      expect(reasons.get(scout[0]!.seriesInstanceUid)).to.match(/LOCALIZER/);
      const sr = cands.find((c) => c.modality === 'SR')!;
      expect(reasons.get(sr.seriesInstanceUid)).to.match(/structured report/);
      const pdf = cands.find((c) => c.sopClassUids.includes('1.2.840.10008.5.1.4.1.1.104.1'))!;
      expect(reasons.get(pdf.seriesInstanceUid)).to.match(/encapsulated document/);
    });

    it('follows configured rules: minimum slices and the modality allow list', () => {
      const strict = selectSeries(cands, { minSlices: 25 });
      expect(strict.selected?.seriesInstanceUid).to.equal(coronal[0]!.seriesInstanceUid);
      expect(strict.skipped.find((s) => s.seriesInstanceUid === axial[0]!.seriesInstanceUid)?.reason).to.match(/fewer than 25/);
      const mrOnly = selectSeries(cands, { modalities: ['MR'] });
      expect(mrOnly.selected).to.equal(undefined);
      const ctSeries = cands.filter((c) => c.modality === 'CT').map((c) => c.seriesInstanceUid);
      expect(ctSeries).to.have.length(3);
      expect(mrOnly.skipped.filter((s) => /allow list/.test(s.reason)).map((s) => s.seriesInstanceUid)).to.have.members(ctSeries);
      const bone = selectSeries(cands, { avoidDescriptions: [/ABDOMEN/] });
      expect(bone.selected?.seriesInstanceUid).to.equal(coronal[0]!.seriesInstanceUid);
    });

    it('selects nothing in a study of only an SR and a PDF, and says why', async () => {
      const docs = randomUid();
      await ingestBytes(core, [intoStudy('non-image/reportsi.dcm', docs), intoStudy('non-image/sample-pdf.dcm', docs)]);
      const c = await loadStudySeries(core.db, core.storage, docs);
      expect(c.length).to.be.greaterThan(0);
      const r = selectSeries(c);
      expect(r.selected).to.equal(undefined);
      expect(r.ranked).to.deep.equal([]);
      expect(r.skipped.map((s) => s.seriesInstanceUid).sort()).to.deep.equal(c.map((x) => x.seriesInstanceUid).sort());
      for (const s of r.skipped) expect(s.reason).to.match(/^not an image: /);
    });

    it('skips derived cross-sectional series but keeps a processed (DERIVED\\PRIMARY) radiograph', () => {
      const cr = sliceHeadersFromJson(jsonOf(fs.readFileSync(path.join(corpusRoot, 'xray/Monochrome1-Jpeg.dcm'))));
      expect(cr[0]!.imageType.slice(0, 2)).to.deep.equal(['DERIVED', 'PRIMARY']);
      const asCandidate = (slices: SliceHeader[]): SeriesCandidate => ({
        studyInstanceUid: '1.2.3',
        seriesInstanceUid: slices[0]!.seriesInstanceUid,
        modality: slices[0]!.modality,
        instanceCount: slices.length,
        sopClassUids: [slices[0]!.sopClassUid],
        slices,
      });
      expect(selectSeries([asCandidate(cr)]).selected?.seriesInstanceUid).to.equal(cr[0]!.seriesInstanceUid);
      const mpr = headersOf(makeCtSeries({ slices: 10, size: 16 })).map((h) => ({ ...h, imageType: ['DERIVED', 'SECONDARY', 'MPR'] }));
      const r = selectSeries([asCandidate(mpr)]);
      expect(r.selected).to.equal(undefined);
      expect(r.skipped[0]!.reason).to.match(/derived or secondary/);
      expect(selectSeries([asCandidate(mpr)], { skipDerived: false }).selected?.seriesInstanceUid).to.equal(mpr[0]!.seriesInstanceUid);
    });

    it('picks a radiograph as a projection', async () => {
      const cr = makeCrImage({ size: 32 });
      await ingestBytes(
        core,
        cr.map((f) => f.bytes),
      );
      const c = await loadStudySeries(core.db, core.storage, cr[0]!.studyInstanceUid);
      const r = selectSeries(c);
      expect(r.selected?.seriesInstanceUid).to.equal(cr[0]!.seriesInstanceUid);
      const v = assembleVolume(r.selected!);
      expect(v.kind).to.equal('projection');
      expect(v.dimensions).to.deep.equal({ rows: 32, columns: 32, slices: 1 });
      expect(v.spacing.row).to.be.greaterThan(0);
    });
  });
});

onBothDatabases((dbName, env) => {
  describe(`volume store on ${dbName}`, function () {
    this.timeout(120_000);
    let core: TestCore;
    before(async () => {
      core = await startTestCore(await env());
    });
    after(async () => {
      await core?.cleanup();
    });

    it('saves a volume, reads it back, and replaces it on a second save', async () => {
      const ct = makeCtSeries({ seed: `store-${dbName}`, slices: 8, size: 16 });
      const vol = assembleVolume(headersOf(ct).filter((_, i) => i !== 3));
      expect(codes(vol)).to.deep.equal(['gap']);
      const study = ct[0]!.studyInstanceUid;
      const id1 = await saveVolume(core.db, study, vol);
      const got = await getVolume(core.db, vol.seriesInstanceUid);
      expect(got).to.not.equal(undefined);
      expect(got!.id).to.equal(id1);
      expect(got!.studyInstanceUid).to.equal(study);
      expect(got!.kind).to.equal('volume');
      expect(got!.dimensions).to.deep.equal(vol.dimensions);
      expect(got!.spacing).to.deep.equal(vol.spacing);
      expect(got!.orientation).to.deep.equal(vol.orientation);
      expect(got!.normal).to.deep.equal(vol.normal);
      expect(got!.origin).to.deep.equal(vol.origin);
      expect(got!.instanceOrder).to.deep.equal(vol.slices.map((s) => [s.sopInstanceUid, 1]));
      expect(got!.problems).to.deep.equal(vol.problems);
      expect(Number.isNaN(Date.parse(got!.createdAt))).to.equal(false);

      const whole = assembleVolume(headersOf(ct));
      const id2 = await saveVolume(core.db, study, whole);
      expect(id2).to.not.equal(id1);
      const again = await getVolume(core.db, vol.seriesInstanceUid);
      expect(again!.id).to.equal(id2);
      expect(again!.dimensions.slices).to.equal(8);
      expect(again!.problems).to.deep.equal([]);
      const [{ n }] = (await core.db('volumes').where('series_instance_uid', vol.seriesInstanceUid).count({ n: '*' })) as Array<{
        n: number | string;
      }>;
      expect(Number(n)).to.equal(1);
      expect(await getVolume(core.db, randomUid())).to.equal(undefined);
    });

    it('stores a projection without slice geometry as nulls', async () => {
      const cr = makeCrImage({ size: 16 });
      const vol = assembleVolume(headersOf(cr));
      await saveVolume(core.db, cr[0]!.studyInstanceUid, vol);
      const got = await getVolume(core.db, vol.seriesInstanceUid);
      expect(got!.kind).to.equal('projection');
      expect(got!.spacing.slice).to.equal(undefined);
      expect(got!.origin).to.equal(vol.origin);
    });
  });
});
