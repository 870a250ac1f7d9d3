import { Readable } from 'node:stream';
import { expect } from 'chai';
import { makeCtSeries } from '../fixtures/generate.js';
import { startTestNode, type TestNode } from './helpers/node.js';

/** Series metadata is built after the series goes quiet, without anyone asking for it. */
describe('WADO-RS metadata built at ingest', function () {
  this.timeout(30_000);
  let node: TestNode;

  before(async () => {
    node = await startTestNode({ METADATA_PREBUILD_MS: '200' });
  });
  after(async () => {
    await node?.cleanup();
  });

  async function cacheRow(series: string) {
    return (await node.db('series_metadata').where({ series_instance_uid: series }).first()) as
      | { instance_count: number; json: string }
      | undefined;
  }

  async function waitFor(series: string, count: number) {
    for (let i = 0; i < 100; i++) {
      const row = await cacheRow(series);
      if (row && Number(row.instance_count) === count) return row;
      await new Promise((r) => setTimeout(r, 50));
    }
    return cacheRow(series);
  }

  it('caches a series once it is quiet, and rebuilds it when more instances arrive', async () => {
    const files = makeCtSeries({ slices: 6 });
    const series = files[0]!.seriesInstanceUid;
    for (const f of files.slice(0, 4)) await node.ingestor.ingestStream(Readable.from([f.bytes]), { source: 'upload' });
    expect(await cacheRow(series), 'not built while instances are arriving').to.equal(undefined);
    const first = await waitFor(series, 4);
    expect(first, 'built after the quiet period').to.not.equal(undefined);
    expect((JSON.parse(first!.json) as unknown[]).length).to.equal(4);

    for (const f of files.slice(4)) await node.ingestor.ingestStream(Readable.from([f.bytes]), { source: 'upload' });
    const second = await waitFor(series, 6);
    expect((JSON.parse(second!.json) as unknown[]).length).to.equal(6);
  });
});
