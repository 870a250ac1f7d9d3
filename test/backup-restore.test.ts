import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { indexCounts } from '../src/catalog/backup.js';
import { loadConfig } from '../src/config.js';
import { createDb } from '../src/db/connection.js';
import { apiClient, ingestCorpusFiles } from './helpers/api.js';
import { draftReportOf, noduleEndpoint, standInEngineEnv } from './helpers/draft-report.js';
import { baseUrl, bearer, tokenFor } from './helpers/http.js';
import { listFiles, startTestNode, tempDir, type TestNode } from './helpers/node.js';
import { readMultipartResponse } from './helpers/wado.js';

/**
 * `radiant backup` / `radiant restore` (issue 21, item 4): a node with real corpus instances (CT
 * slices, an MR) and an AI draft published as SR and PDF is backed up while it runs, restored into
 * a fresh node, and every instance retrieved over WADO-RS from both has the same SHA-256; the
 * index counts (studies, series, instances, reports, users, audit) match. A non-empty target is
 * refused without --force; a backup goes into an empty folder only.
 */

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve('dist/src/cli.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

interface Ref {
  study: string;
  series: string;
  sop: string;
}

/** Every instance's SHA-256 as WADO-RS retrieves it (as stored: transfer-syntax=*), by SOP Instance UID. */
async function retrievedHashes(node: TestNode, refs: Ref[]): Promise<Map<string, string>> {
  const auth = bearer(await tokenFor(node, 'viewer'));
  const out = new Map<string, string>();
  for (const r of refs) {
    const res = await fetch(`${baseUrl(node)}/dicom-web/studies/${r.study}/series/${r.series}/instances/${r.sop}`, {
      headers: { ...auth, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
    });
    expect(res.status, r.sop).to.equal(200);
    const { parts } = await readMultipartResponse(res);
    expect(parts).to.have.length(1);
    out.set(r.sop, createHash('sha256').update(parts[0]!.body).digest('hex'));
  }
  return out;
}

async function allInstances(node: TestNode): Promise<Ref[]> {
  return node
    .db('instances as i')
    .join('series as se', 'se.id', 'i.series_pk')
    .join('studies as st', 'st.id', 'se.study_pk')
    .select('st.study_instance_uid as study', 'se.series_instance_uid as series', 'i.sop_instance_uid as sop')
    .orderBy('i.sop_instance_uid');
}

describe('backup and restore (SQLite, local storage)', function () {
  this.timeout(300_000);
  let original: TestNode;
  let restored: TestNode | undefined;
  let fake: Awaited<ReturnType<typeof noduleEndpoint>>;
  const dirs: string[] = [];

  before(async function () {
    fake = await noduleEndpoint();
    original = await startTestNode(standInEngineEnv(fake.url));
    const files: Record<string, string> = { mr: 'mr-series-brain-sag-192/0001-1.3.12.2.1107.5.2.19.45152.2013030808110258929186035.dcm' };
    for (let i = 0; i < 8; i++) files[`ct${i}`] = `ct-series-chest-99/${String(i).padStart(6, '0')}.dcm`;
    const rows = await ingestCorpusFiles(original, files);
    const ctStudy = (
      await original
        .db('studies')
        .join('series', 'series.study_pk', 'studies.id')
        .where('series.id', rows.ct0!.series_pk)
        .first('studies.study_instance_uid')
    ).study_instance_uid as string;
    // An unsigned AI draft: its SR and PDF are instances of the study too.
    await draftReportOf(original, ctStudy);
  });

  after(async function () {
    await restored?.cleanup();
    await original?.cleanup();
    await fake?.close();
    for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
  });

  it('restores into a fresh node: every instance hash and the index counts are the same', async function () {
    const refs = await allInstances(original);
    const sources = await original.db('instances').distinct('source').pluck('source');
    expect(sources).to.include.members(['import', 'ai']);
    expect(refs.length).to.be.greaterThan(10);
    const work = await tempDir('backup');
    dirs.push(work);
    const backupDir = path.join(work, 'b');
    // While the node runs (VACUUM INTO reads one snapshot).
    const b = await cli(['backup', backupDir], { DATA_DIR: original.dir });
    expect(b.code, b.out).to.equal(0);
    const manifest = JSON.parse(await fsp.readFile(path.join(backupDir, 'manifest.json'), 'utf8'));
    expect(manifest.database).to.deep.equal({ client: 'sqlite', file: 'database.sqlite' });
    expect(manifest.objects).to.have.length(refs.length);
    const indexed = new Map(
      ((await original.db('instances').select('storage_key', 'sha256')) as Array<{ storage_key: string; sha256: string | null }>).map(
        (r) => [r.storage_key, r.sha256],
      ),
    );
    for (const o of manifest.objects) {
      expect(o.copied).to.equal(true);
      if (indexed.get(o.key)) expect(o.sha256, o.key).to.equal(indexed.get(o.key));
    }
    const backedUp = await indexCounts(original.db);
    expect(manifest.counts.instances).to.equal(refs.length);
    expect(manifest.counts.reports).to.equal(1);

    // A backup goes into an empty folder only.
    const again = await cli(['backup', backupDir], { DATA_DIR: original.dir });
    expect(again.code).to.equal(1);
    expect(again.out).to.match(/is not empty/);

    const freshDir = await tempDir('restored');
    dirs.push(freshDir);
    const r = await cli(['restore', backupDir], { DATA_DIR: freshDir });
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.include(`restored ${backupDir}: ${refs.length} objects copied`);
    const db = createDb(loadConfig({ DATA_DIR: freshDir }, freshDir).database);
    const restoredCounts = await indexCounts(db);
    await db.destroy();
    expect(restoredCounts).to.deep.equal(manifest.counts);
    for (const t of ['patients', 'studies', 'series', 'instances', 'reports', 'users'] as const)
      expect(restoredCounts[t], t).to.equal(backedUp[t]);
    expect(restoredCounts.audit_logs).to.be.greaterThan(0);

    // A non-empty target is refused; --force replaces it.
    const refused = await cli(['restore', backupDir], { DATA_DIR: freshDir });
    expect(refused.code).to.equal(1);
    expect(refused.out).to.match(/not empty.*use --force/);
    const forced = await cli(['restore', backupDir, '--force'], { DATA_DIR: freshDir });
    expect(forced.code, forced.out).to.equal(0);

    restored = await startTestNode({ DATA_DIR: freshDir });
    const want = await retrievedHashes(original, refs);
    const got = await retrievedHashes(restored, await allInstances(restored));
    expect(got.size).to.equal(want.size);
    for (const [sop, h] of want) expect(got.get(sop), sop).to.equal(h);
    // The restored node answers the API with the original's report and users.
    const report = await apiClient(restored, await tokenFor(restored, 'admin')).get('/api/reports/1');
    expect(report.status).to.equal(200);
    expect(report.body.state).to.equal('draft');
  });

  it('a backup whose blob was altered is refused at restore, before anything of it is stored', async function () {
    const work = await tempDir('backup-bad');
    dirs.push(work);
    const backupDir = path.join(work, 'b');
    expect((await cli(['backup', backupDir], { DATA_DIR: original.dir })).code).to.equal(0);
    const manifest = JSON.parse(await fsp.readFile(path.join(backupDir, 'manifest.json'), 'utf8'));
    const victim = path.join(backupDir, 'blobs', manifest.objects[0].key);
    const bytes = await fsp.readFile(victim);
    bytes[bytes.length - 1] ^= 0xff;
    await fsp.writeFile(victim, bytes);
    const freshDir = await tempDir('restored-bad');
    dirs.push(freshDir);
    const r = await cli(['restore', backupDir], { DATA_DIR: freshDir });
    expect(r.code).to.equal(1);
    expect(r.out).to.include(`${manifest.objects[0].key}: the backup's copy does not match its manifest SHA-256`);
    // Nothing was written: no database, no blob.
    expect(listFiles(freshDir)).to.deep.equal([]);
  });
});
