import fsp from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { makeCtSeries, writeSeries } from '../fixtures/generate.js';
import { countInstances } from '../src/catalog/catalog.js';
import { storescu } from './helpers/dcmtk.js';
import { startTestNode, type TestNode } from './helpers/node.js';

/** Out-of-resources refusals over C-STORE: the status, the reason, and a node that carries on. */
describe('DIMSE C-STORE out of resources', function () {
  this.timeout(60_000);
  let node: TestNode;
  let files: string[];

  before(async () => {
    node = await startTestNode({ MAX_INSTANCE_BYTES: '20000' });
    files = await writeSeries(path.join(node.dir, 'in'), makeCtSeries({ slices: 2, size: 128 }));
  });
  after(async () => {
    await node?.cleanup();
  });

  it('refuses an instance over MAX_INSTANCE_BYTES with 0xA700 and a reason', async () => {
    const r = await storescu(node.dicomPort, [files[0]!], ['-v']);
    expect(r.output).to.match(/Received Store Response \(Refused: OutOfResources/);
    expect(await countInstances(node.db)).to.equal(0);
    expect(await fsp.readdir(node.config.tempDir)).to.deep.equal([]);
  });

  it('refuses with 0xA700 when storage cannot be written, and stores again once it can', async () => {
    const small = await startTestNode();
    try {
      const root = path.join(small.dir, 'storage');
      const studies = path.join(root, 'studies');
      // A file where the studies folder should be: every write under it fails (even as root).
      await fsp.rm(studies, { recursive: true, force: true });
      await fsp.writeFile(studies, 'not a directory');
      const r = await storescu(small.dicomPort, [files[0]!], ['-v']);
      expect(r.output).to.match(/Received Store Response \(Refused: OutOfResources/);
      expect(await countInstances(small.db)).to.equal(0);

      await fsp.rm(studies);
      const ok = await storescu(small.dicomPort, [files[0]!], ['-v']);
      expect(ok.output).to.match(/Received Store Response \(Success\)/);
      expect(await countInstances(small.db)).to.equal(1);
    } finally {
      await small.cleanup();
    }
  });
});
