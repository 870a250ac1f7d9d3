import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { Readable } from 'node:stream';
import { StorageError } from '../src/errors.js';
import { assertSafeKey, assertSafePrefix } from './keys.js';
import { assertValidRange } from './range.js';
import { uploadLocalFile } from './remote-put-file.js';
import { fitServedRange, uploadMetered } from './streams.js';
import type { BlobStorage, ByteRange, StoredObjectInfo } from './types.js';

export interface AzureBlobStorageOptions {
  connectionString: string;
  container: string;
  /** Create the container in check() when it does not exist. */
  createContainer?: boolean;
  /** Blobs per list request (default and service maximum 5000); small values test paging. */
  listPageSize?: number;
  /** The encryption scope named on every put (AZURE_ENCRYPTION_SCOPE); unset: the container's default. */
  encryptionScope?: string;
}

const BLOCK_SIZE = 8 * 1024 * 1024;
const CONCURRENCY = 4;

function restError(err: unknown): { status: number | undefined; code: string | undefined } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { statusCode?: unknown; code?: unknown };
  return {
    status: typeof e.statusCode === 'number' ? e.statusCode : undefined,
    code: typeof e.code === 'string' ? e.code : undefined,
  };
}

function isMissingBlob(err: unknown): boolean {
  const { status, code } = restError(err);
  // A missing container also answers 404; that is a misconfiguration, not a missing key.
  return status === 404 && code !== 'ContainerNotFound';
}

function azureFailure(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const { status, code } = restError(err);
  if (isMissingBlob(err)) return new StorageError('not-found', `${what}: not found`, { cause: err });
  if (status === 416 || code === 'InvalidRange') {
    return new StorageError('invalid-input', `${what}: byte range not satisfiable`, { cause: err });
  }
  const detail = code ?? (err instanceof Error ? err.message : String(err));
  return new StorageError('out-of-resources', `${what}: ${detail}${status ? ` (HTTP ${status})` : ''}`, { cause: err });
}

export class AzureBlobStorage implements BlobStorage {
  readonly kind = 'azure' as const;
  private readonly container: ContainerClient;
  private readonly createContainer: boolean;
  private readonly listPageSize: number;
  private readonly encryptionScope: string | undefined;

  constructor(opts: AzureBlobStorageOptions) {
    this.container = BlobServiceClient.fromConnectionString(opts.connectionString).getContainerClient(opts.container);
    this.createContainer = opts.createContainer ?? false;
    this.listPageSize = opts.listPageSize ?? 5000;
    this.encryptionScope = opts.encryptionScope;
  }

  async put(key: string, body: Readable, opts: { contentType?: string; size?: number } = {}): Promise<number> {
    return uploadMetered(
      body,
      opts.size,
      async (source) => {
        assertSafeKey(key);
        // Blocks are staged, then committed in one call: the blob (or its previous version) is
        // never visible half-written, and a failed stream commits nothing.
        await this.container.getBlockBlobClient(key).uploadStream(source, BLOCK_SIZE, CONCURRENCY, {
          blobHTTPHeaders: opts.contentType ? { blobContentType: opts.contentType } : undefined,
          ...(this.encryptionScope ? { encryptionScope: this.encryptionScope } : {}),
        });
      },
      (err) => azureFailure(err, `put ${key}`),
    );
  }

  async putFile(key: string, path: string, opts: { move?: boolean; contentType?: string } = {}): Promise<number> {
    assertSafeKey(key);
    return uploadLocalFile((k, b, o) => this.put(k, b, o), key, path, opts);
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    assertSafeKey(key);
    if (range) assertValidRange(range);
    let res;
    try {
      const count = range?.end !== undefined ? range.end - range.start + 1 : undefined;
      res = await this.container.getBlobClient(key).download(range?.start ?? 0, count);
    } catch (err) {
      throw azureFailure(err, `get ${key}`);
    }
    const body = res.readableStreamBody;
    if (!(body instanceof Readable)) throw new StorageError('out-of-resources', `get ${key}: response has no body stream`);
    if (!range) return body;
    return fitServedRange(body, range, { contentRange: res.contentRange, contentLength: res.contentLength });
  }

  async stat(key: string): Promise<StoredObjectInfo | undefined> {
    assertSafeKey(key);
    try {
      const props = await this.container.getBlobClient(key).getProperties();
      return { key, size: props.contentLength ?? 0 };
    } catch (err) {
      if (isMissingBlob(err)) return undefined;
      throw azureFailure(err, `stat ${key}`);
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async delete(key: string): Promise<void> {
    assertSafeKey(key);
    try {
      await this.container.getBlobClient(key).deleteIfExists({ deleteSnapshots: 'include' });
    } catch (err) {
      throw azureFailure(err, `delete ${key}`);
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObjectInfo> {
    assertSafePrefix(prefix);
    try {
      // Azure lists blob names in byte order, like S3 and the local walk.
      const pages = this.container.listBlobsFlat({ prefix: prefix === '' ? undefined : prefix }).byPage({ maxPageSize: this.listPageSize });
      for await (const page of pages) {
        for (const blob of page.segment.blobItems) yield { key: blob.name, size: blob.properties.contentLength ?? 0 };
      }
    } catch (err) {
      throw azureFailure(err, `list ${prefix}`);
    }
  }

  async check(): Promise<void> {
    try {
      if (await this.container.exists()) return;
      if (this.createContainer) {
        await this.container.createIfNotExists();
        return;
      }
    } catch (err) {
      throw azureFailure(err, `container ${this.container.containerName}`);
    }
    throw new StorageError('out-of-resources', `container ${this.container.containerName} does not exist`);
  }
}
