import { expect } from 'chai';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { StorageError } from '../../src/errors.js';
import { instanceKey } from '../../storage/keys.js';
import type { BlobStorage, StoredObjectInfo } from '../../storage/types.js';

/**
 * The behaviour every BlobStorage back end owes the node, run against each of them. Tests share
 * one store, so each works under its own random namespace.
 */

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export async function collect(iter: AsyncIterable<StoredObjectInfo>): Promise<StoredObjectInfo[]> {
  const out: StoredObjectInfo[] = [];
  for await (const item of iter) out.push(item);
  return out;
}

export async function expectStorageError(promise: Promise<unknown>, kind: StorageError['kind']): Promise<StorageError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a StorageError('${kind}')`).to.be.instanceOf(StorageError);
  const err = caught as StorageError;
  expect(err.kind, err.message).to.equal(kind);
  return err;
}

/** Sends `before` bytes of `bytes`, then fails the way a dropped connection does. */
export function failingBody(bytes: Buffer, before: number, error: Error): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= before) {
        this.destroy(error);
        return;
      }
      const n = Math.min(256 * 1024, before - sent);
      this.push(bytes.subarray(sent, sent + n));
      sent += n;
    },
  });
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export const INVALID_KEYS: readonly string[] = [
  '',
  '/etc/passwd',
  '../x',
  'a/../../b',
  'a//b',
  'a/./b',
  '.',
  'trailing/',
  'back\\slash',
  'nul\u0000byte',
  'x'.repeat(1025),
];

export interface ContractOptions {
  /**
   * 'bytes' (the default) holds list() to the BlobStorage promise of byte order. 'any' checks
   * the listed set only, for test servers known to break the order (s3rver walks its directory
   * tree instead of sorting keys).
   */
  listOrder?: 'bytes' | 'any';
}

export function describeStorageContract(name: string, factory: () => Promise<BlobStorage> | BlobStorage, opts: ContractOptions = {}): void {
  const ordered = (keys: string[]): string[] => (opts.listOrder === 'any' ? [...keys].sort() : keys);
  describe(`${name}: BlobStorage contract`, function () {
    let storage: BlobStorage;
    let scratch: string;
    const ns = `contract-${randomUUID()}`;
    const k = (rel: string): string => `${ns}/${rel}`;

    before(async function () {
      storage = await factory();
      scratch = await mkdtemp(path.join(os.tmpdir(), 'radiant-contract-'));
    });

    after(async function () {
      await rm(scratch, { recursive: true, force: true });
      await storage?.close?.();
    });

    it('passes check()', async function () {
      await storage.check();
    });

    it('stores and reads back an object, and reports its size', async function () {
      const key = instanceKey('1.2.840.113619.2.1', '1.2.3.4', '1.2.3.4.5');
      const body = randomBytes(1000);
      expect(await storage.put(key, Readable.from([body]), { contentType: 'application/dicom' })).to.equal(1000);
      expect(await storage.exists(key)).to.equal(true);
      expect(await storage.stat(key)).to.deep.equal({ key, size: 1000 });
      expect((await readAll(await storage.get(key))).equals(body)).to.equal(true);
      await storage.delete(key);
    });

    it('accepts an announced size that matches the body', async function () {
      const body = randomBytes(4096);
      expect(await storage.put(k('sized'), Readable.from([body.subarray(0, 100), body.subarray(100)]), { size: 4096 })).to.equal(4096);
      expect((await readAll(await storage.get(k('sized')))).equals(body)).to.equal(true);
    });

    it('stores an empty object', async function () {
      expect(await storage.put(k('empty'), Readable.from([]))).to.equal(0);
      expect(await storage.stat(k('empty'))).to.deep.equal({ key: k('empty'), size: 0 });
      expect((await readAll(await storage.get(k('empty')))).length).to.equal(0);
    });

    it('overwrites an existing object completely', async function () {
      await storage.put(k('over'), Readable.from([Buffer.from('a much longer first version')]));
      expect(await storage.put(k('over'), Readable.from([Buffer.from('short')]))).to.equal(5);
      expect((await readAll(await storage.get(k('over')))).toString()).to.equal('short');
      expect((await storage.stat(k('over')))?.size).to.equal(5);
    });

    describe('byte ranges', function () {
      const body = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
      before(async function () {
        await storage.put(k('range'), Readable.from([body]));
      });

      const cases: Array<[string, { start: number; end?: number }, Buffer]> = [
        ['a middle slice', { start: 10, end: 19 }, body.subarray(10, 20)],
        ['the first byte only', { start: 0, end: 0 }, body.subarray(0, 1)],
        ['the last byte only', { start: 99, end: 99 }, body.subarray(99)],
        ['an open-ended tail', { start: 95 }, body.subarray(95)],
        ['a range past the end, clamped', { start: 90, end: 1000 }, body.subarray(90)],
        ['the whole object', { start: 0, end: 99 }, body],
      ];
      for (const [what, range, expected] of cases) {
        it(`reads ${what}`, async function () {
          const got = await readAll(await storage.get(k('range'), range));
          expect([...got]).to.deep.equal([...expected]);
        });
      }

      it('refuses a range that starts past the end', async function () {
        await expectStorageError(storage.get(k('range'), { start: 100 }), 'invalid-input');
        await expectStorageError(storage.get(k('range'), { start: 500, end: 600 }), 'invalid-input');
      });

      it('refuses malformed ranges', async function () {
        await expectStorageError(storage.get(k('range'), { start: -1 }), 'invalid-input');
        await expectStorageError(storage.get(k('range'), { start: 5, end: 2 }), 'invalid-input');
        await expectStorageError(storage.get(k('range'), { start: 1.5 }), 'invalid-input');
      });
    });

    it('reports a missing key as not-found / absent', async function () {
      const key = k('missing/object.dcm');
      await expectStorageError(storage.get(key), 'not-found');
      await expectStorageError(storage.get(key, { start: 0, end: 1 }), 'not-found');
      expect(await storage.stat(key)).to.equal(undefined);
      expect(await storage.exists(key)).to.equal(false);
    });

    it('treats a key prefix of other keys as absent', async function () {
      await storage.put(k('dir/inner'), Readable.from([Buffer.from('x')]));
      expect(await storage.exists(k('dir'))).to.equal(false);
      await expectStorageError(storage.get(k('dir')), 'not-found');
      await storage.delete(k('dir'));
      expect(await storage.exists(k('dir/inner'))).to.equal(true);
    });

    it('deletes, and deleting an absent key is fine', async function () {
      await storage.put(k('del/me'), Readable.from([Buffer.from('bye')]));
      await storage.delete(k('del/me'));
      expect(await storage.exists(k('del/me'))).to.equal(false);
      await expectStorageError(storage.get(k('del/me')), 'not-found');
      await storage.delete(k('del/me'));
      await storage.delete(k('never/existed'));
      expect(await collect(storage.list(k('del/')))).to.deep.equal([]);
    });

    it('lists keys under a prefix in byte order', async function () {
      // '.' < '/' < '0' in byte order: a naive directory walk would put list/a/b first.
      const keys = ['list/b', 'list/a0', 'list/a/b', 'list/a.c', 'list/a/c/d', 'list/B', 'listing'];
      for (const [i, rel] of keys.entries()) await storage.put(k(rel), Readable.from([Buffer.alloc(i + 1, i)]));
      const listed = async (prefix: string): Promise<string[]> => ordered((await collect(storage.list(prefix))).map((o) => o.key));
      expect(await listed(k('list/'))).to.deep.equal(['list/B', 'list/a.c', 'list/a/b', 'list/a/c/d', 'list/a0', 'list/b'].map(k));
      expect(await collect(storage.list(k('list/a0')))).to.deep.equal([{ key: k('list/a0'), size: 2 }]);
      // A prefix may end inside a segment.
      expect(await listed(k('list/a'))).to.deep.equal(['list/a.c', 'list/a/b', 'list/a/c/d', 'list/a0'].map(k));
      expect(await listed(k('list'))).to.include(k('listing'));
      expect(await listed(k('list/a/'))).to.deep.equal(['list/a/b', 'list/a/c/d'].map(k));
      expect(await collect(storage.list(k('nothing-here/')))).to.deep.equal([]);
    });

    it('refuses unsafe list prefixes', async function () {
      for (const prefix of ['../', '/abs', 'a//b', 'a/../b/']) {
        await expectStorageError(collect(storage.list(prefix)), 'invalid-input');
      }
    });

    it('putFile copies a file and leaves the source', async function () {
      const src = path.join(scratch, 'copy.bin');
      const body = randomBytes(70_000);
      await writeFile(src, body);
      expect(await storage.putFile(k('files/copy'), src)).to.equal(body.length);
      expect((await readFile(src)).equals(body)).to.equal(true);
      expect((await readAll(await storage.get(k('files/copy')))).equals(body)).to.equal(true);
    });

    it('putFile with move takes the file over', async function () {
      const src = path.join(scratch, 'move.bin');
      const body = randomBytes(70_000);
      await writeFile(src, body);
      expect(await storage.putFile(k('files/move'), src, { move: true, contentType: 'application/dicom' })).to.equal(body.length);
      await expectRejectsWithCode(stat(src), 'ENOENT');
      expect((await readAll(await storage.get(k('files/move')))).equals(body)).to.equal(true);
    });

    it('putFile from a missing source is not-found and stores nothing', async function () {
      await expectStorageError(storage.putFile(k('files/ghost'), path.join(scratch, 'nope.bin')), 'not-found');
      await expectStorageError(storage.putFile(k('files/ghost'), path.join(scratch, 'nope.bin'), { move: true }), 'not-found');
      expect(await storage.exists(k('files/ghost'))).to.equal(false);
    });

    it('refuses unsafe keys everywhere, and closes the body it was given', async function () {
      const src = path.join(scratch, 'src.bin');
      await writeFile(src, 'data');
      for (const key of INVALID_KEYS) {
        const body = Readable.from([Buffer.from('data')]);
        await expectStorageError(storage.put(key, body), 'invalid-input');
        expect(body.destroyed, `body left open for ${JSON.stringify(key)}`).to.equal(true);
        await expectStorageError(storage.putFile(key, src), 'invalid-input');
        await expectStorageError(storage.putFile(key, src, { move: true }), 'invalid-input');
        await expectStorageError(storage.get(key), 'invalid-input');
        await expectStorageError(storage.stat(key), 'invalid-input');
        await expectStorageError(storage.exists(key), 'invalid-input');
        await expectStorageError(storage.delete(key), 'invalid-input');
      }
      // The move was refused, so the file is still there.
      expect((await readFile(src)).toString()).to.equal('data');
    });

    it('a body that fails halfway leaves no object and surfaces its own error', async function () {
      const boom = new Error('association aborted');
      const err = await storage.put(k('broken/new'), failingBody(randomBytes(1 << 20), 512 * 1024, boom)).catch((e: unknown) => e);
      expect(err).to.equal(boom);
      expect(await storage.exists(k('broken/new'))).to.equal(false);
      expect(await collect(storage.list(k('broken/')))).to.deep.equal([]);
    });

    it('a failed overwrite keeps the previous version whole', async function () {
      const old = randomBytes(3000);
      await storage.put(k('broken/old'), Readable.from([old]));
      const boom = new Error('client went away');
      const err = await storage.put(k('broken/old'), failingBody(randomBytes(1 << 20), 600 * 1024, boom)).catch((e: unknown) => e);
      expect(err).to.equal(boom);
      expect((await readAll(await storage.get(k('broken/old')))).equals(old)).to.equal(true);
    });

    it('a body of the wrong announced size is refused and not stored', async function () {
      await expectStorageError(storage.put(k('short'), Readable.from([Buffer.alloc(5)]), { size: 10 }), 'invalid-input');
      await expectStorageError(storage.put(k('long'), Readable.from([Buffer.alloc(15)]), { size: 10 }), 'invalid-input');
      expect(await storage.exists(k('short'))).to.equal(false);
      expect(await storage.exists(k('long'))).to.equal(false);
    });

    describe('a ~20 MiB binary body (multipart on S3)', function () {
      const big = randomBytes(20 * 1024 * 1024 + 12345);
      const MiB8 = 8 * 1024 * 1024;

      it('round-trips byte for byte', async function () {
        // Chunks of odd sizes, as a network socket delivers them.
        const chunks: Buffer[] = [];
        for (let off = 0; off < big.length; off += 65_537) chunks.push(big.subarray(off, off + 65_537));
        expect(await storage.put(k('big.bin'), Readable.from(chunks), { size: big.length })).to.equal(big.length);
        expect((await storage.stat(k('big.bin')))?.size).to.equal(big.length);
        expect(sha256(await readAll(await storage.get(k('big.bin'))))).to.equal(sha256(big));
      });

      it('serves a range across a part boundary', async function () {
        const range = { start: MiB8 - 100, end: MiB8 + 99 };
        const got = await readAll(await storage.get(k('big.bin'), range));
        expect(got.equals(big.subarray(range.start, range.end + 1))).to.equal(true);
      });

      it('a multipart-sized body that fails after the first part leaves no object', async function () {
        const boom = new Error('dropped after 9 MiB');
        const err = await storage.put(k('big-broken.bin'), failingBody(big, 9 * 1024 * 1024, boom)).catch((e: unknown) => e);
        expect(err).to.equal(boom);
        expect(await storage.exists(k('big-broken.bin'))).to.equal(false);
      });
    });
  });
}

async function expectRejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect((caught as { code?: unknown } | undefined)?.code).to.equal(code);
}
