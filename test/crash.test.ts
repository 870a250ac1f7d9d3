import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import knexFactory from 'knex';
import { corpusDir } from './helpers/corpus.js';
import { runTool, storescu } from './helpers/dcmtk.js';
import { freePort, listFiles, tempDir } from './helpers/node.js';
import { startNodeProcess } from './helpers/node-process.js';
import { parseHeaderFile } from '../src/dicom/header.js';

/**
 * Crash safety: SIGKILL the node in the middle of a 99-instance C-STORE, restart it, and check
 * that every instance whose C-STORE got Success is indexed and retrievable, and that no
 * half-written blob is visible.
 */

describe('crash safety', function () {
  this.timeout(180_000);

  it('keeps every acknowledged instance after SIGKILL mid-association, and no partial blob', async () => {
    const dataDir = await tempDir('crash');
    const port = await freePort();
    const files = corpusDir('ct-series-chest-99').map((e) => e.absPath);
    let node = await startNodeProcess(dataDir, port);

    // storescu -v prints "Sending file: X" then "Received Store Response (Success)" per file.
    const scu = spawn('storescu', ['-v', '-aet', 'CRASH', '-aec', 'RADIANT', '127.0.0.1', String(port), ...files], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const acked = new Set<string>();
    let current: string | undefined;
    let killed = false;
    const onLine = (line: string) => {
      const sending = /Sending file: (.*)$/.exec(line);
      if (sending) current = sending[1]!.trim();
      if (/Received Store Response \(Success\)/.test(line) && current) acked.add(current);
      if (!killed && acked.size >= 30) {
        killed = true;
        node.kill('SIGKILL');
      }
    };
    let pending = '';
    const feed = (d: Buffer) => {
      output += d.toString();
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      lines.forEach(onLine);
    };
    scu.stdout!.on('data', feed);
    scu.stderr!.on('data', feed);
    await new Promise((r) => scu.once('close', r));
    expect(killed, output.slice(-500)).to.equal(true);
    expect(acked.size).to.be.at.least(30).and.below(99);

    node = await startNodeProcess(dataDir, port);
    try {
      const db = knexFactory({ client: 'sqlite3', connection: { filename: path.join(dataDir, 'radiant.sqlite') }, useNullAsDefault: true });
      try {
        for (const file of acked) {
          const parsed = await parseHeaderFile(file, 1 << 24);
          expect(parsed.ok).to.equal(true);
          const sop = parsed.ok ? parsed.header.sopInstanceUid : '';
          const row = (await db('instances').where('sop_instance_uid', sop).first()) as
            | { storage_key: string; size_bytes: number }
            | undefined;
          expect(row, `acknowledged ${path.basename(file)} is not indexed`).to.not.equal(undefined);
          const blob = path.join(dataDir, 'storage', row!.storage_key);
          expect(fs.statSync(blob).size).to.equal(Number(row!.size_bytes));
        }
        // And nothing is stored that the index cannot find: a blob stored by the killed process
        // but never indexed was swept at the restart (ingest-journal.ts).
        const keys = new Set(((await db('instances').select('storage_key')) as Array<{ storage_key: string }>).map((r) => r.storage_key));
        const orphans = listFiles(path.join(dataDir, 'storage')).filter((f) => !f.startsWith('.tmp') && !keys.has(f));
        expect(orphans, 'blobs without an index row').to.deep.equal([]);
      } finally {
        await db.destroy();
      }

      // Every visible blob is complete: DCMTK reads each one to the end without complaint.
      const storageRoot = path.join(dataDir, 'storage');
      const blobs = listFiles(storageRoot).filter((f) => !f.startsWith('.tmp'));
      expect(blobs.length).to.be.at.least(acked.size);
      for (const blob of blobs) {
        const r = await runTool('dcmdump', ['-E', path.join(storageRoot, blob)]);
        expect(r.code, `${blob}: ${r.stderr}`).to.equal(0);
        expect(r.stderr, blob).to.not.match(/^E:|premature end/m);
      }
      // Temp files of the interrupted association are gone.
      expect(listFiles(path.join(storageRoot, '.tmp')).length).to.equal(0);

      // And the node carries on: the whole series can be sent again and ends up complete.
      const again = await storescu(port, files, [], 'RADIANT');
      expect(again.code, again.output).to.equal(0);
    } finally {
      node.kill('SIGTERM');
      await new Promise((r) => node.once('exit', r));
      await fsp.rm(dataDir, { recursive: true, force: true });
    }
  });
});
