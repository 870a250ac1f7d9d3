import { expect } from 'chai';
import dicomweb from 'dicomweb-client';
import sharp from 'sharp';
import XHR2 from 'xhr2';
import { makeCtSeries, type GeneratedFile } from '../fixtures/generate.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { startTestNode, type TestNode } from './helpers/node.js';

/**
 * Issue 17: the npm `dicomweb-client` (the client OHIF itself uses) against a real node, for the
 * calls the other suites do not make with it: STOW-RS, QIDO-RS at the three levels, WADO-RS
 * retrieve of a whole study and series, and rendered. (Instance, series metadata, frames and bulk
 * data are in wado, frames and dicomweb-protocol; Orthanc's DICOMweb plugin is the second client,
 * in orthanc-dicomweb.)
 */

type Json = Record<string, { vr: string; Value?: unknown[] }>;
const value = (j: Json, tag: string) => j[tag]?.Value?.[0];

describe('dicomweb-client (OHIF) as a client: STOW, QIDO at every level, study/series retrieve, rendered', function () {
  this.timeout(120_000);
  let node: TestNode;
  let client: InstanceType<typeof dicomweb.api.DICOMwebClient>;
  let files: GeneratedFile[] = [];
  const g = globalThis as { XMLHttpRequest?: unknown };
  const saved = g.XMLHttpRequest;

  before(async () => {
    node = await startTestNode();
    g.XMLHttpRequest = XHR2;
    client = new dicomweb.api.DICOMwebClient({
      url: `${baseUrl(node)}/dicom-web`,
      headers: bearer(await tokenFor(node, 'admin')),
      verbose: false,
      singlepart: false,
    });
    files = makeCtSeries({ seed: 'dicomweb-client', slices: 3, size: 64 });
  });
  after(async () => {
    g.XMLHttpRequest = saved;
    await node?.cleanup();
  });

  it('stores a series with storeInstances and finds it by study, series and instance search', async () => {
    const datasets = files.map((f) => f.bytes.buffer.slice(f.bytes.byteOffset, f.bytes.byteOffset + f.bytes.length) as ArrayBuffer);
    await client.storeInstances({ datasets } as Parameters<typeof client.storeInstances>[0]);
    const study = files[0]!.studyInstanceUid;
    const series = files[0]!.seriesInstanceUid;
    const studies = (await client.searchForStudies({
      queryParams: { StudyInstanceUID: study },
    } as Parameters<typeof client.searchForStudies>[0])) as Json[];
    expect(studies.map((s) => value(s, '0020000D'))).to.deep.equal([study]);
    expect(value(studies[0]!, '00201208')).to.equal(files.length);
    const seriesList = (await client.searchForSeries({ studyInstanceUID: study } as Parameters<
      typeof client.searchForSeries
    >[0])) as Json[];
    expect(seriesList.map((s) => value(s, '0020000E'))).to.deep.equal([series]);
    const instances = (await client.searchForInstances({
      studyInstanceUID: study,
      seriesInstanceUID: series,
    } as Parameters<typeof client.searchForInstances>[0])) as Json[];
    expect(instances.map((i) => value(i, '00080018')).sort()).to.deep.equal(files.map((f) => f.sopInstanceUid).sort());
  });

  it('retrieves the whole study and the series as DICOM, every instance back', async () => {
    const study = files[0]!.studyInstanceUid;
    const series = files[0]!.seriesInstanceUid;
    const uidsOf = (parts: ArrayBuffer[]) =>
      parts.map((p) => {
        const text = Buffer.from(p).toString('latin1');
        return files.find((f) => text.includes(f.sopInstanceUid))?.sopInstanceUid;
      });
    const all = (await client.retrieveStudy({ studyInstanceUID: study } as Parameters<typeof client.retrieveStudy>[0])) as ArrayBuffer[];
    expect(all).to.have.length(files.length);
    expect(uidsOf(all).sort()).to.deep.equal(files.map((f) => f.sopInstanceUid).sort());
    const one = (await client.retrieveSeries({ studyInstanceUID: study, seriesInstanceUID: series } as Parameters<
      typeof client.retrieveSeries
    >[0])) as ArrayBuffer[];
    expect(one).to.have.length(files.length);
    for (const part of one) expect(Buffer.from(part).toString('latin1', 128, 132)).to.equal('DICM');
  });

  it('retrieves a rendered instance as PNG at the image size', async () => {
    const f = files[1]!;
    const png = (await client.retrieveInstanceRendered({
      studyInstanceUID: f.studyInstanceUid,
      seriesInstanceUID: f.seriesInstanceUid,
      sopInstanceUID: f.sopInstanceUid,
      mediaTypes: [{ mediaType: 'image/png' }],
    } as Parameters<typeof client.retrieveInstanceRendered>[0])) as ArrayBuffer | ArrayBuffer[];
    // The client hands back the response's parts (one, the image).
    const parts = (Array.isArray(png) ? png : [png]) as ArrayBuffer[];
    expect(parts).to.have.length(1);
    const meta = await sharp(Buffer.from(parts[0]!)).metadata();
    expect(meta.format).to.equal('png');
    expect([meta.width, meta.height]).to.deep.equal([64, 64]);
  });
});
