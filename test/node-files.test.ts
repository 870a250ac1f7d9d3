import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Readable } from 'node:stream';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { openCore, type Core } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { findInstance } from '../src/catalog/catalog.js';
import { journalDirFor } from '../src/ingest/ingest-journal.js';
import { makeCtSeries } from '../fixtures/generate.js';
import { corpusDir } from './helpers/corpus.js';
import { storescu } from './helpers/dcmtk.js';
import { freePort, listFiles, tempDir } from './helpers/node.js';
import { startNodeProcess } from './helpers/node-process.js';

/**
 * What the node leaves on disk: private files (issue 13 item 7), and no blob the index cannot
 * find after a process died between storing and indexing (item 8).
 */

function mode(p: string): number {
  return fs.statSync(p).mode & 0o777;
}

describe('node files', function () {
  this.timeout(120_000);

  it('creates its database, keys, blobs and folders for its own user only, and tightens an old data folder', async () => {
    const dataDir = await tempDir('modes');
    await fsp.chmod(dataDir, 0o755); // as an install from before would have left it
    const port = await freePort();
    const node = await startNodeProcess(dataDir, port);
    try {
      const r = await storescu(port, [corpusDir('ct-series-chest-99')[0]!.absPath]);
      expect(r.code, r.output).to.equal(0);
    } finally {
      node.kill('SIGTERM');
      await new Promise((res) => node.once('exit', res));
    }
    try {
      expect(mode(dataDir).toString(8)).to.equal('700');
      for (const f of ['radiant.sqlite', 'secret.key']) expect(mode(path.join(dataDir, f)).toString(8), f).to.equal('600');
      const storage = path.join(dataDir, 'storage');
      expect(mode(storage).toString(8)).to.equal('700');
      const blobs = listFiles(storage).filter((f) => f.startsWith('studies/'));
      expect(blobs.length).to.equal(1);
      expect(mode(path.join(storage, blobs[0]!)).toString(8), 'blob').to.equal('600');
      // Every folder on the way down to it.
      for (let d = path.dirname(path.join(storage, blobs[0]!)); d !== storage; d = path.dirname(d)) {
        expect(mode(d).toString(8), d).to.equal('700');
      }
    } finally {
      await fsp.rm(dataDir, { recursive: true, force: true });
    }
  });

  describe('blobs stored but never indexed (a process killed between the two)', () => {
    let dir: string;
    let core: Core | undefined;
    const open = async () => {
      core = await openCore(loadConfig({ DATA_DIR: dir }, dir), createLogger('silent'));
      return core;
    };
    let live: ChildProcess;
    beforeEach(async () => {
      dir = await tempDir('orphans');
      live = spawn('sleep', ['60']);
    });
    afterEach(async () => {
      live.kill();
      await core?.close();
      core = undefined;
      await fsp.rm(dir, { recursive: true, force: true });
    });

    it('are removed at the next start and reported; indexed blobs and live processes are left alone', async () => {
      const [a, b, c] = makeCtSeries({ slices: 3, size: 16 });
      let c1 = await open();
      const stored = await c1.ingestor.ingestFile(writeTemp(dir, a!.bytes), true, { source: 'import' });
      const journal = journalDirFor(c1.config.tempDir);
      const storageRoot = path.join(dir, 'storage');
      // What a SIGKILL between "blob stored" and "indexed" leaves: b's blob and its marker.
      const orphanKey = `studies/${b!.studyInstanceUid}/series/${b!.seriesInstanceUid}/instances/${b!.sopInstanceUid}.dcm`;
      await c1.storage.put(orphanKey, fsReadable(b!.bytes));
      const dead = deadPid();
      await fsp.writeFile(
        path.join(journal, `${dead}-00000000-0000-4000-8000-000000000001.json`),
        JSON.stringify({ storageKey: orphanKey, sopInstanceUid: b!.sopInstanceUid }),
      );
      // A crash after the commit: a's marker, its blob indexed.
      await fsp.writeFile(
        path.join(journal, `${dead}-00000000-0000-4000-8000-000000000002.json`),
        JSON.stringify({ storageKey: stored.storageKey, sopInstanceUid: a!.sopInstanceUid }),
      );
      // A live process's marker (this test process): its ingest is still in flight.
      const liveKey = `studies/${c!.studyInstanceUid}/series/${c!.seriesInstanceUid}/instances/${c!.sopInstanceUid}.dcm`;
      await c1.storage.put(liveKey, fsReadable(c!.bytes));
      const otherLive = live.pid!; // another process of this node, still ingesting
      await fsp.writeFile(
        path.join(journal, `${otherLive}-00000000-0000-4000-8000-000000000003.json`),
        JSON.stringify({ storageKey: liveKey, sopInstanceUid: c!.sopInstanceUid }),
      );
      await c1.close();
      core = undefined;

      c1 = await open();
      expect(fs.existsSync(path.join(storageRoot, orphanKey)), 'orphan blob').to.equal(false);
      expect(fs.existsSync(path.join(storageRoot, stored.storageKey)), 'indexed blob').to.equal(true);
      expect((await findInstance(c1.db, a!.sopInstanceUid))?.storage_key).to.equal(stored.storageKey);
      expect(fs.existsSync(path.join(storageRoot, liveKey)), "a live process's blob").to.equal(true);
      expect(fs.readdirSync(journal)).to.deep.equal([`${otherLive}-00000000-0000-4000-8000-000000000003.json`]);
      const rows = (await c1.db('audit_logs').where({ action: 'storage.orphans-removed' })) as Array<{ details: string }>;
      expect(rows.length).to.equal(1);
      expect(JSON.parse(rows[0]!.details)).to.deep.include({ count: 1, keys: [orphanKey] });
    });

    it('ingest leaves no marker behind, stored or refused', async () => {
      const c1 = await open();
      const [a] = makeCtSeries({ slices: 1, size: 16 });
      await c1.ingestor.ingestFile(writeTemp(dir, a!.bytes), true, { source: 'import' });
      await c1.ingestor
        .ingestFile(writeTemp(dir, Buffer.from('not dicom at all, but long enough to be looked at'.repeat(4))), true, { source: 'import' })
        .catch(() => undefined);
      expect(fs.readdirSync(journalDirFor(c1.config.tempDir))).to.deep.equal([]);
    });
  });
});

let n = 0;
function writeTemp(dir: string, bytes: Uint8Array): string {
  const p = path.join(dir, `in-${n++}.dcm`);
  fs.writeFileSync(p, bytes);
  return p;
}

function fsReadable(bytes: Uint8Array): Readable {
  return Readable.from([Buffer.from(bytes)]);
}

/** A pid that no process has now: a child that has exited and been reaped. */
function deadPid(): number {
  const r = spawnSync('true');
  return r.pid!;
}
