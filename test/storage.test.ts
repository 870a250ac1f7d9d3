import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { StorageError } from '../src/errors.js';
import { AzureBlobStorage } from '../storage/azure.js';
import { createStorage } from '../storage/index.js';
import { assertSafeKey, instanceKey } from '../storage/keys.js';
import { isValidUid } from '../src/dicom/uids.js';
import { LocalStorage } from '../storage/local.js';
import { S3Storage } from '../storage/s3.js';
import { type RunningAzurite, startAzurite } from './helpers/azurite.js';
import { type RunningS3rver, startS3rver } from './helpers/s3rver.js';
import { INVALID_KEYS, collect, describeStorageContract, expectStorageError, failingBody, readAll } from './helpers/storage-contract.js';

describe('storage keys', function () {
  it('accepts DICOM UIDs', function () {
    for (const uid of ['0', '1', '1.2', '1.2.840.10008.5.1.4.1.1.2', '2.25.0.1', '1.0.0', '9'.repeat(64)]) {
      expect(isValidUid(uid), uid).to.equal(true);
    }
  });

  it('rejects anything else', function () {
    const bad = ['', '.', '1.', '.1', '1..2', '01.2', '1.02', '1.2a', '1/2', '../1', ' 1.2', '1.2 ', '1'.repeat(65), '1.-2'];
    for (const uid of bad) expect(isValidUid(uid), JSON.stringify(uid)).to.equal(false);
    expect(isValidUid(undefined)).to.equal(false);
    expect(isValidUid(12)).to.equal(false);
  });

  it('builds instance keys and refuses invalid UIDs', function () {
    expect(instanceKey('1.2.3', '1.2.3.4', '1.2.3.4.5')).to.equal('studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5.dcm');
    const bad: Array<[string, string, string]> = [
      ['../..', '1.2', '1.3'],
      ['1.2', '1.2/../x', '1.3'],
      ['1.2', '1.3', ''],
      ['1.2', '1.3', '1.03'],
    ];
    for (const [study, series, sop] of bad) {
      const err = (() => {
        try {
          instanceKey(study, series, sop);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).to.be.instanceOf(StorageError);
      expect((err as StorageError).kind).to.equal('invalid-input');
    }
  });

  it('assertSafeKey accepts relative keys and refuses the rest', function () {
    for (const key of ['a', 'a/b', 'studies/1.2/series/3/instances/4.dcm', '.hidden/x', 'a..b', 'x'.repeat(1024)]) {
      expect(() => assertSafeKey(key), key).not.to.throw();
    }
    for (const key of INVALID_KEYS) {
      expect(() => assertSafeKey(key), JSON.stringify(key)).to.throw(StorageError);
    }
  });
});

describe('LocalStorage', function () {
  let base: string;
  before(async function () {
    base = await mkdtemp(path.join(os.tmpdir(), 'radiant-local-'));
  });
  after(async function () {
    await rm(base, { recursive: true, force: true });
  });

  describeStorageContract('local', () => new LocalStorage({ root: path.join(base, 'contract') }));

  describe('specifics', function () {
    let root: string;
    let storage: LocalStorage;
    beforeEach(async function () {
      root = path.join(base, randomUUID(), 'store');
      storage = new LocalStorage({ root });
      await storage.check();
    });

    const partFiles = async (): Promise<string[]> =>
      (await readdir(path.join(root, '.tmp')).catch(() => [] as string[])).filter((n) => n.endsWith('.part'));

    it('check() creates a missing root', async function () {
      const fresh = path.join(base, randomUUID(), 'a', 'b');
      await new LocalStorage(fresh).check();
      expect((await stat(fresh)).isDirectory()).to.equal(true);
    });

    it('check() fails on a root that cannot be a directory', async function () {
      const file = path.join(base, `${randomUUID()}.file`);
      await writeFile(file, 'not a directory');
      await expectStorageError(new LocalStorage(path.join(file, 'store')).check(), 'out-of-resources');
    });

    it('refuses keys that climb out of the root, and writes nothing outside it', async function () {
      const parent = path.dirname(root);
      for (const key of ['../x', '/etc/passwd', 'a//b', '../../../../tmp/escape', 'a/../../x']) {
        await expectStorageError(storage.put(key, Readable.from([Buffer.from('x')])), 'invalid-input');
      }
      expect((await readdir(parent)).sort()).to.deep.equal(['store']);
    });

    it('reserves .tmp/ for itself', async function () {
      await expectStorageError(storage.put('.tmp/x.part', Readable.from([Buffer.from('x')])), 'invalid-input');
      await expectStorageError(storage.get('.tmp'), 'invalid-input');
    });

    it('does not list temp files or the ingest spool under .tmp/', async function () {
      await mkdir(path.join(root, '.tmp', 'incoming'), { recursive: true });
      await writeFile(path.join(root, '.tmp', 'incoming', 'upload.dcm'), 'x');
      await writeFile(path.join(root, '.tmp', 'stale.part'), 'x');
      await storage.put('visible', Readable.from([Buffer.from('y')]));
      expect(await collect(storage.list(''))).to.deep.equal([{ key: 'visible', size: 1 }]);
    });

    it('readRange reads a range in one buffer, or into a given one at an offset; past the end or absent fails', async function () {
      const bytes = randomBytes(100_000);
      await storage.put('r/one.dcm', Readable.from([bytes]));
      expect((await storage.readRange('r/one.dcm', { start: 10, end: 70_009 })).equals(bytes.subarray(10, 70_010))).to.equal(true);
      const framed = Buffer.alloc(20, 7);
      const into = Buffer.alloc(framed.length + 5);
      const out = await storage.readRange('r/one.dcm', { start: 99_995, end: 99_999 }, { buffer: into, offset: 20 });
      expect(out).to.equal(into);
      expect(into.subarray(0, 20).every((b) => b === 0)).to.equal(true);
      expect(into.subarray(20).equals(bytes.subarray(99_995))).to.equal(true);
      await expectStorageError(storage.readRange('r/one.dcm', { start: 99_000, end: 100_000 }), 'invalid-input');
      await expectStorageError(
        storage.readRange('r/one.dcm', { start: 0, end: 9 }, { buffer: Buffer.alloc(5), offset: 0 }),
        'invalid-input',
      );
      await expectStorageError(storage.readRange('r/none.dcm', { start: 0, end: 9 }), 'not-found');
    });

    it('a failing body leaves neither the object nor a temp file', async function () {
      const boom = new Error('boom');
      const err = await storage.put('a/b/c.dcm', failingBody(randomBytes(1 << 20), 300_000, boom)).catch((e: unknown) => e);
      expect(err).to.equal(boom);
      expect(await storage.exists('a/b/c.dcm')).to.equal(false);
      expect(await partFiles()).to.deep.equal([]);
    });

    it('a process killed mid-put leaves no visible object; cleanTempFiles removes its leftovers', async function () {
      // A real crash: a child process streams half a body into put() and is SIGKILLed.
      const localJs = new URL('../storage/local.js', import.meta.url).href;
      const script = `
        import { LocalStorage } from ${JSON.stringify(localJs)};
        import { readdir, stat } from 'node:fs/promises';
        import { Readable } from 'node:stream';
        import path from 'node:path';
        const root = process.env.RADIANT_TEST_ROOT;
        const half = Buffer.alloc(1 << 20, 7);
        let pushed = false;
        const body = new Readable({ read() { if (!pushed) { pushed = true; this.push(half); } } });
        new LocalStorage(root).put('studies/1/series/2/instances/3.dcm', body);
        const tmp = path.join(root, '.tmp');
        setInterval(async () => {
          for (const name of await readdir(tmp).catch(() => [])) {
            if (name.endsWith('.part') && (await stat(path.join(tmp, name))).size >= half.length) {
              process.stdout.write('HALF\\n');
            }
          }
        }, 10);
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, RADIANT_TEST_ROOT: root },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          if (d.toString().includes('HALF')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
      });
      child.kill('SIGKILL');
      expect(await exited).to.equal('SIGKILL');

      expect(await storage.exists('studies/1/series/2/instances/3.dcm')).to.equal(false);
      expect(await collect(storage.list(''))).to.deep.equal([]);
      expect(await partFiles()).to.have.length(1);

      await mkdir(path.join(root, '.tmp', 'incoming'), { recursive: true });
      expect(await storage.cleanTempFiles()).to.equal(1);
      expect(await partFiles()).to.deep.equal([]);
      // The ingest spool shares .tmp/ and is not a leftover of ours.
      expect((await stat(path.join(root, '.tmp', 'incoming'))).isDirectory()).to.equal(true);
    });

    it('cleanTempFiles spares puts in flight and young files when asked', async function () {
      await writeFile(path.join(root, '.tmp', 'young.part'), 'x');
      expect(await storage.cleanTempFiles({ minAgeMs: 60_000 })).to.equal(0);

      const body = new Readable({ read() {} });
      body.push(Buffer.alloc(1000));
      const putting = storage.put('slow', body);
      // Wait until the in-flight temp file exists, then clean around it.
      while ((await partFiles()).length < 2) await new Promise((r) => setTimeout(r, 5));
      expect(await storage.cleanTempFiles()).to.equal(1); // young.part only
      body.push(null);
      expect(await putting).to.equal(1000);
      expect(await storage.exists('slow')).to.equal(true);
    });

    it('a reader keeps the version it opened while the key is overwritten', async function () {
      await storage.put('pinned', Readable.from([Buffer.alloc(100_000, 1)]));
      const reader = await storage.get('pinned');
      await storage.put('pinned', Readable.from([Buffer.alloc(10, 2)]));
      const got = await readAll(reader);
      expect(got.length).to.equal(100_000);
      expect(got.every((b) => b === 1)).to.equal(true);
      expect((await readAll(await storage.get('pinned'))).equals(Buffer.alloc(10, 2))).to.equal(true);
    });

    it('delete prunes directories left empty, and keeps the root', async function () {
      await storage.put('studies/1/series/2/instances/3.dcm', Readable.from([Buffer.from('x')]));
      await storage.put('studies/1/series/9/instances/3.dcm', Readable.from([Buffer.from('x')]));
      await storage.delete('studies/1/series/2/instances/3.dcm');
      expect(await readdir(path.join(root, 'studies', '1', 'series'))).to.deep.equal(['9']);
      await storage.delete('studies/1/series/9/instances/3.dcm');
      expect((await readdir(root)).sort()).to.deep.equal(['.tmp']);
    });

    it('putFile with move from another file system falls back to copying', async function () {
      // /dev/shm is a tmpfs on Linux (EXDEV from the temp dir's disk); where it is missing this
      // degrades to a same-device rename, which must give the same result.
      const shm = await stat('/dev/shm').then(
        (s) => s.isDirectory(),
        () => false,
      );
      const otherFs = await mkdtemp(path.join(shm ? '/dev/shm' : os.tmpdir(), 'radiant-'));
      try {
        const src = path.join(otherFs, 'in.dcm');
        const body = randomBytes(50_000);
        await writeFile(src, body);
        expect(await storage.putFile('moved.dcm', src, { move: true })).to.equal(body.length);
        await expectStorageError(storage.putFile('again.dcm', src), 'not-found');
        expect((await readAll(await storage.get('moved.dcm'))).equals(body)).to.equal(true);
        expect(await partFiles()).to.deep.equal([]);
      } finally {
        await rm(otherFs, { recursive: true, force: true });
      }
    });

    it('putFile of a file its caller already synced (move, synced) renames it in place with no second fsync of it', async function () {
      // The ingest path fsyncs its spool file while the header is parsed; storage then only
      // renames it and syncs the directory. Syncs are counted on FileHandle itself.
      const probe = await open(path.join(root, '..'), 'r');
      const proto = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
      await probe.close();
      await storage.put('studies/s/x.dcm', Readable.from([Buffer.from('x')]));
      const sync = proto.sync;
      let syncs = 0;
      proto.sync = function (this: unknown) {
        syncs++;
        return sync.call(this);
      };
      try {
        const body = randomBytes(20_000);
        const synced = path.join(root, '..', 'synced.part');
        await writeFile(synced, body);
        expect(await storage.putFile('studies/s/synced.dcm', synced, { move: true, synced: true })).to.equal(body.length);
        expect(syncs, 'the directory only').to.equal(1);
        const plain = path.join(root, '..', 'plain.part');
        await writeFile(plain, body);
        await storage.putFile('studies/s/plain.dcm', plain, { move: true });
        expect(syncs, 'the file, then the directory').to.equal(3);
        expect((await readAll(await storage.get('studies/s/synced.dcm'))).equals(body)).to.equal(true);
      } finally {
        proto.sync = sync;
      }
    });

    it('a key that collides with the directory of other keys is invalid-input', async function () {
      await storage.put('a/b', Readable.from([Buffer.from('x')]));
      await expectStorageError(storage.put('a', Readable.from([Buffer.from('y')])), 'invalid-input');
      await expectStorageError(storage.put('a/b/c', Readable.from([Buffer.from('y')])), 'invalid-input');
      expect(await partFiles()).to.deep.equal([]);
    });
  });
});

describe('S3Storage against s3rver', function () {
  let server: RunningS3rver;
  before(async function () {
    server = await startS3rver();
  });
  after(async function () {
    await server?.stop();
  });

  const s3 = (bucket: string, extra: { createBucket?: boolean; listPageSize?: number } = {}): S3Storage =>
    new S3Storage({
      bucket,
      region: 'us-east-1',
      endpoint: server.endpoint,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      ...extra,
    });

  describeStorageContract(
    's3',
    async () => {
      const storage = s3('radiant-contract', { createBucket: true });
      await storage.check();
      return storage;
    },
    // s3rver lists in directory-walk order ('a/b' before 'a.c'), unlike S3's byte order.
    { listOrder: 'any' },
  );

  it('list() follows continuation tokens across pages', async function () {
    // Flat keys: s3rver pages correctly only where its walk order matches byte order.
    const storage = s3('radiant-paging', { createBucket: true, listPageSize: 2 });
    await storage.check();
    const keys = Array.from({ length: 7 }, (_, i) => `page/k${i}`);
    for (const key of keys) await storage.put(key, Readable.from([Buffer.from(key)]));
    await storage.put('other/k', Readable.from([Buffer.from('x')]));
    const listed = await collect(storage.list('page/'));
    expect(listed.map((o) => o.key)).to.deep.equal(keys);
    expect(listed.every((o) => o.size === 'page/k0'.length)).to.equal(true);
    await storage.close();
  });

  it('createStorage builds an S3 store that works', async function () {
    const storage = await createStorage({
      type: 's3',
      bucket: 'radiant-factory',
      region: 'us-east-1',
      endpoint: server.endpoint,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      createBucket: true,
    });
    expect(storage.kind).to.equal('s3');
    await storage.check();
    await storage.check(); // idempotent once the bucket exists
    await storage.put('k', Readable.from([Buffer.from('v')]));
    expect((await readAll(await storage.get('k'))).toString()).to.equal('v');
    await storage.close?.();
  });

  it('check() fails for a missing bucket unless asked to create it', async function () {
    const storage = s3('radiant-absent');
    await expectStorageError(storage.check(), 'out-of-resources');
    await storage.close();
  });

  it('an unreachable endpoint is out-of-resources', async function () {
    const storage = new S3Storage({
      bucket: 'b',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:1',
      accessKeyId: 'x',
      secretAccessKey: 'y',
    });
    await expectStorageError(storage.check(), 'out-of-resources');
    await expectStorageError(storage.put('k', Readable.from([Buffer.from('v')])), 'out-of-resources');
    await storage.close();
  });
});

describe('AzureBlobStorage against Azurite', function () {
  let azurite: RunningAzurite;
  before(async function () {
    azurite = await startAzurite();
  });
  after(async function () {
    await azurite?.stop();
  });

  describeStorageContract('azure', async () => {
    const storage = new AzureBlobStorage({
      connectionString: azurite.connectionString,
      container: 'radiant-contract',
      createContainer: true,
      listPageSize: 2,
    });
    await storage.check();
    return storage;
  });

  it('createStorage builds an Azure store that works', async function () {
    const storage = await createStorage({
      type: 'azure',
      connectionString: azurite.connectionString,
      container: 'radiant-factory',
      createContainer: true,
    });
    expect(storage.kind).to.equal('azure');
    await storage.check();
    await storage.check();
    await storage.put('k', Readable.from([Buffer.from('v')]));
    expect((await readAll(await storage.get('k'))).toString()).to.equal('v');
  });

  it('a missing container is out-of-resources, not a missing key', async function () {
    const storage = new AzureBlobStorage({ connectionString: azurite.connectionString, container: 'radiant-absent' });
    await expectStorageError(storage.check(), 'out-of-resources');
    await expectStorageError(storage.get('k'), 'out-of-resources');
  });
});
