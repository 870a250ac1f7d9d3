import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { migrationNames } from '../migrations/index.js';
import { makeCtSeries, writeSeries } from '../fixtures/generate.js';
import { countInstances, findInstance, getStudySummary } from '../src/catalog/catalog.js';
import { createDb } from '../src/db/connection.js';
import { corpusRoot } from './helpers/corpus.js';
import { tempDir } from './helpers/node.js';
import { runTool, type ToolResult } from './helpers/dcmtk.js';

/**
 * The real `radiant` command as a child process: exit codes, what it prints, and what it leaves
 * in the index. Configuration comes from a minimal environment, never the test runner's own.
 */

// Compiled to dist/test/cli.test.js; the CLI is dist/src/cli.js.
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');

type CliResult = ToolResult;

function radiant(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  return runTool(process.execPath, [CLI, ...args], timeoutMs, { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env });
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');
const show = (r: CliResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** Nothing escaped to the top-level handler and no stack trace was printed. */
function expectNoCrash(r: CliResult): void {
  expect(r.signal, show(r)).to.equal(null);
  expect(r.stderr, show(r)).to.not.match(/^radiant: /m);
  expect(r.stderr, show(r)).to.not.match(/^\s+at .+:\d+:\d+\)?$/m);
}

function sqliteDb(dataDir: string) {
  return createDb({ client: 'sqlite', filename: path.join(dataDir, 'radiant.sqlite') });
}

describe('radiant CLI (child process)', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  const freshDir = async (): Promise<string> => {
    const d = await tempDir('cli');
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
  });

  describe('configuration errors', () => {
    const cases: Array<[string, Record<string, string>, string]> = [
      ['a non-numeric DICOM_PORT', { DICOM_PORT: 'abc' }, 'DICOM_PORT'],
      ['an unknown MODE', { MODE: 'bogus' }, 'MODE'],
      ['STORAGE_TYPE=s3 without S3_BUCKET', { STORAGE_TYPE: 's3' }, 'S3_BUCKET'],
      [
        'STORAGE_TYPE=azure without its connection string',
        { STORAGE_TYPE: 'azure', AZURE_CONTAINER: 'c1c' },
        'AZURE_STORAGE_CONNECTION_STRING',
      ],
      ['MODE=online without a database', { MODE: 'online' }, 'DATABASE_URL'],
      ['an out-of-range DICOM_MAX_ASSOCIATIONS', { DICOM_MAX_ASSOCIATIONS: '0' }, 'DICOM_MAX_ASSOCIATIONS'],
    ];
    for (const [what, env, variable] of cases) {
      it(`stops with exit code 2 and one line naming ${variable} for ${what}`, async () => {
        const dataDir = await freshDir();
        const runs = await Promise.all(
          [['migrate'], ['import', dataDir]].map((command) => radiant(command, { DATA_DIR: dataDir, ...env })),
        );
        for (const r of runs) {
          expect(r.code, show(r)).to.equal(2);
          const err = lines(r.stderr);
          expect(err, show(r)).to.have.length(1);
          expect(err[0]).to.match(/^radiant: configuration error: /);
          expect(err[0]).to.include(variable);
          expect(r.stdout, show(r)).to.equal('');
        }
        // Nothing was created: the node stopped before touching the index.
        expect(fs.existsSync(path.join(dataDir, 'radiant.sqlite'))).to.equal(false);
      });
    }
  });

  describe('radiant migrate', () => {
    it('lists the migrations as pending, applies them, then lists them as applied', async () => {
      const env = { DATA_DIR: await freshDir() };
      const before = await radiant(['migrate', '--status'], env);
      expect(before.code, show(before)).to.equal(0);
      expect(migrationNames.length).to.be.greaterThanOrEqual(6);
      expect(lines(before.stdout)).to.deep.equal(migrationNames.map((n) => `pending  ${n}`));

      const applied = await radiant(['migrate'], env);
      expect(applied.code, show(applied)).to.equal(0);
      expect(lines(applied.stdout)).to.deep.equal([`applied: ${migrationNames.join(', ')}`]);

      const again = await radiant(['migrate'], env);
      expect(again.code, show(again)).to.equal(0);
      expect(lines(again.stdout)).to.deep.equal(['database is up to date']);

      const status = await radiant(['migrate', '--status'], env);
      expect(status.code, show(status)).to.equal(0);
      expect(lines(status.stdout)).to.deep.equal(migrationNames.map((n) => `applied  ${n}`));
      for (const r of [before, applied, again, status]) expectNoCrash(r);
    });
  });

  describe('radiant import', () => {
    it('exits 2 with a usage line when given no path', async () => {
      const r = await radiant(['import'], { DATA_DIR: await freshDir() });
      expect(r.code, show(r)).to.equal(2);
      expect(lines(r.stderr)).to.deep.equal(['radiant import: give at least one file or directory']);
    });

    it('reports every malformed file, exits 1, and keeps what it stored through a following valid import', async () => {
      const dataDir = await freshDir();
      const env = { DATA_DIR: dataDir };
      const malformedDir = path.join(corpusRoot, 'malformed');
      const files = fs
        .readdirSync(malformedDir, { withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => path.join(malformedDir, e.name))
        .sort();
      expect(files.length, `corpus at ${corpusRoot}`).to.be.greaterThan(10);

      const r = await radiant(['import', malformedDir], env);
      expectNoCrash(r);
      expect(r.code, show(r)).to.equal(1);

      const out = lines(r.stdout);
      const summary = out.at(-1)!;
      const perFile = out.slice(0, -1);
      expect(perFile, show(r)).to.have.length(files.length);

      const seen: string[] = [];
      const stored = new Map<string, string>(); // SOP Instance UID -> path
      let refused = 0;
      for (const line of perFile) {
        const ok = /^(stored|replaced|ignored) +(\/\S+) ([0-9.]+)$/.exec(line);
        const bad = /^refused +(\/.+?): (.*)$/.exec(line);
        expect(ok || bad, `unexpected line: ${line}`).to.not.equal(null);
        if (ok) {
          seen.push(ok[2]!);
          stored.set(ok[3]!, ok[2]!);
        } else {
          refused++;
          seen.push(bad![1]!);
          expect(bad![2]!.trim(), `refused without a reason: ${line}`).to.not.equal('');
        }
      }
      expect(seen.sort(), 'one line per file').to.deep.equal(files);
      expect(refused, 'malformed/ holds files the node must refuse').to.be.greaterThan(0);
      expect(stored.size, 'malformed/ holds files the node can store').to.be.greaterThan(0);
      // The reasons the node gives for the well-known broken files.
      expect(reasonOf(perFile, 'MR_truncated.dcm')).to.match(/truncated/);
      expect(reasonOf(perFile, 'no_meta.dcm')).to.match(/Part 10/);
      expect(reasonOf(perFile, 'UnknownSopClassUid.dcm')).to.match(/not a storage SOP class/);
      expect(summary).to.match(new RegExp(`^${files.length} files: ${files.length - refused} stored, ${refused} refused; `));

      // A valid series after the failures: exit 0, every file stored, the summary counts it.
      const seriesDir = path.join(await freshDir(), 'ct');
      const ct = makeCtSeries({ slices: 6 });
      const paths = await writeSeries(seriesDir, ct);
      const ok = await radiant(['import', seriesDir], env);
      expectNoCrash(ok);
      expect(ok.code, show(ok)).to.equal(0);
      const okLines = lines(ok.stdout);
      expect(okLines, show(ok)).to.have.length(paths.length + 1);
      for (const p of paths) {
        const sop = ct[paths.indexOf(p)]!.sopInstanceUid;
        expect(okLines).to.include(`stored   ${p} ${sop}`);
      }
      expect(okLines.at(-1)).to.match(new RegExp(`^${paths.length} files: ${paths.length} stored, 0 refused; `));

      // The index after both runs: what was stored before is still there, with its blob.
      const db = sqliteDb(dataDir);
      try {
        for (const [sop, file] of stored) {
          const row = await findInstance(db, sop);
          expect(row, `${file} (${sop}) no longer indexed`).to.not.equal(undefined);
          expect(fs.existsSync(path.join(dataDir, 'storage', row!.storage_key)), `${file}: blob missing`).to.equal(true);
        }
        const study = await getStudySummary(db, ct[0]!.studyInstanceUid);
        expect(study).to.include({ num_series: 1, num_instances: paths.length, modalities_in_study: 'CT' });
        expect(await countInstances(db)).to.equal(stored.size + paths.length);
      } finally {
        await db.destroy();
      }
    });
  });
});

function reasonOf(perFile: string[], name: string): string {
  const line = perFile.find((l) => l.startsWith('refused ') && l.includes(`/${name}: `));
  expect(line, `${name} should be refused`).to.be.a('string');
  return line!.slice(line!.indexOf(`/${name}: `) + name.length + 3);
}

describe('radiant user create', function () {
  this.timeout(60_000);

  it('creates a user from a password on stdin-free env, refuses a duplicate and a bad role', async () => {
    const env = { DATA_DIR: await tempDir('cli-user'), RADIANT_USER_PASSWORD: 'a-long-enough-password' };
    const ok = await radiant(['user', 'create', 'alice', 'radiologist'], env);
    expect(ok.code, show(ok)).to.equal(0);
    expect(ok.stdout).to.match(/created user alice \(radiologist\)/);
    const dup = await radiant(['user', 'create', 'alice', 'radiologist'], env);
    expect(dup.code, show(dup)).to.equal(1);
    expect(dup.stderr).to.match(/exists/);
    const bad = await radiant(['user', 'create', 'bob', 'superuser'], env);
    expect(bad.code, show(bad)).to.equal(2);
    expect(bad.stderr).to.match(/unknown role/);
    const db = createDb({ client: 'sqlite', filename: path.join(env.DATA_DIR, 'radiant.sqlite') });
    try {
      const row = (await db('users').where({ username: 'alice' }).first()) as { role: string; password_hash: string };
      expect(row.role).to.equal('radiologist');
      expect(row.password_hash).to.match(/^scrypt\$/);
      expect(row.password_hash).to.not.include('a-long-enough-password');
    } finally {
      await db.destroy();
    }
  });
});
