import {
  type BucketLocationConstraint,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
  type S3ClientConfig,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { StorageError } from '../src/errors.js';
import { assertSafeKey, assertSafePrefix } from './keys.js';
import { assertValidRange } from './range.js';
import { uploadLocalFile } from './remote-put-file.js';
import { fitServedRange, uploadMetered } from './streams.js';
import type { BlobStorage, ByteRange, StoredObjectInfo } from './types.js';

export interface S3StorageOptions {
  bucket: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** An S3-compatible service (MinIO, Ceph, s3rver...); implies path-style addressing. */
  endpoint?: string;
  /** Create the bucket in check() when it does not exist (tests, first start of a dev node). */
  createBucket?: boolean;
  /** Keys per ListObjectsV2 request (default and S3 maximum 1000); small values test paging. */
  listPageSize?: number;
  /** Server-side encryption sent with every put (S3_SSE); unset: the bucket's default encryption. */
  sse?: 'AES256' | 'aws:kms';
  /** The KMS key of `sse: 'aws:kms'` (S3_SSE_KMS_KEY_ID). */
  sseKmsKeyId?: string;
}

const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 4;

interface AwsErrorShape {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function awsError(err: unknown): { name: string | undefined; status: number | undefined } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as AwsErrorShape;
  return { name: e.Code ?? e.name, status: e.$metadata?.httpStatusCode };
}

function isMissingObject(err: unknown): boolean {
  const { name, status } = awsError(err);
  if (name === 'NoSuchBucket') return false; // a misconfiguration, not a missing key
  return name === 'NoSuchKey' || name === 'NotFound' || status === 404;
}

function s3Failure(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const { name, status } = awsError(err);
  const detail = name ?? (err instanceof Error ? err.message : String(err));
  if (isMissingObject(err)) return new StorageError('not-found', `${what}: not found`, { cause: err });
  if (name === 'InvalidRange' || status === 416) {
    return new StorageError('invalid-input', `${what}: byte range not satisfiable`, { cause: err });
  }
  // Throttling, 5xx, refused connections, DNS, credentials: the store cannot take work now.
  return new StorageError('out-of-resources', `${what}: ${detail}${status ? ` (HTTP ${status})` : ''}`, { cause: err });
}

export class S3Storage implements BlobStorage {
  readonly kind = 's3' as const;
  readonly bucket: string;
  private readonly client: S3Client;
  private readonly createBucket: boolean;
  private readonly region: string;
  private readonly listPageSize: number;
  private readonly encryption: { ServerSideEncryption?: 'AES256' | 'aws:kms'; SSEKMSKeyId?: string };

  constructor(opts: S3StorageOptions) {
    this.bucket = opts.bucket;
    this.region = opts.region;
    this.createBucket = opts.createBucket ?? false;
    this.listPageSize = opts.listPageSize ?? 1000;
    // Named on every put (one PutObject or CreateMultipartUpload), so no object is stored unencrypted.
    this.encryption = {
      ...(opts.sse ? { ServerSideEncryption: opts.sse } : {}),
      ...(opts.sse === 'aws:kms' && opts.sseKmsKeyId ? { SSEKMSKeyId: opts.sseKmsKeyId } : {}),
    };
    const config: S3ClientConfig = {
      region: opts.region,
      // Without explicit keys the SDK's default chain applies (env, profile, instance role).
      credentials:
        opts.accessKeyId && opts.secretAccessKey ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } : undefined,
    };
    if (opts.endpoint) {
      config.endpoint = opts.endpoint;
      // Compatible servers rarely have wildcard DNS for virtual-host buckets.
      config.forcePathStyle = true;
      // The SDK's default CRC32 "flexible checksums" are newer than most S3-compatible servers;
      // only send checksums where the API requires them. AWS itself keeps the defaults.
      config.requestChecksumCalculation = 'WHEN_REQUIRED';
      config.responseChecksumValidation = 'WHEN_REQUIRED';
    }
    this.client = new S3Client(config);
  }

  async put(key: string, body: Readable, opts: { contentType?: string; size?: number } = {}): Promise<number> {
    return uploadMetered(
      body,
      opts.size,
      async (source) => {
        assertSafeKey(key);
        // Upload sends one PutObject for small bodies and a multipart upload otherwise; either
        // way S3 shows the object only once it is complete, and a failed stream aborts it.
        await new Upload({
          client: this.client,
          params: { Bucket: this.bucket, Key: key, Body: source, ContentType: opts.contentType, ...this.encryption },
          partSize: PART_SIZE,
          queueSize: QUEUE_SIZE,
          leavePartsOnError: false,
        }).done();
      },
      // The SDK may report the abort of the multipart upload rather than why it was aborted;
      // uploadMetered prefers the body's own failure.
      (err) => s3Failure(err, `put ${key}`),
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
      res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: range ? `bytes=${range.start}-${range.end ?? ''}` : undefined,
        }),
      );
    } catch (err) {
      throw s3Failure(err, `get ${key}`);
    }
    const body = res.Body;
    // In Node the SDK hands back the IncomingMessage itself.
    if (!(body instanceof Readable)) throw new StorageError('out-of-resources', `get ${key}: response has no body stream`);
    if (!range) return body;
    return fitServedRange(body, range, { contentRange: res.ContentRange, contentLength: res.ContentLength });
  }

  async stat(key: string): Promise<StoredObjectInfo | undefined> {
    assertSafeKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: res.ContentLength ?? 0 };
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      throw s3Failure(err, `stat ${key}`);
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async delete(key: string): Promise<void> {
    assertSafeKey(key);
    try {
      // S3 answers 204 for an absent key as well.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      if (isMissingObject(err)) return;
      throw s3Failure(err, `delete ${key}`);
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObjectInfo> {
    assertSafePrefix(prefix);
    const pages = paginateListObjectsV2(
      { client: this.client, pageSize: this.listPageSize },
      { Bucket: this.bucket, Prefix: prefix === '' ? undefined : prefix },
    );
    try {
      for await (const page of pages) {
        for (const obj of page.Contents ?? []) {
          if (obj.Key !== undefined) yield { key: obj.Key, size: obj.Size ?? 0 };
        }
      }
    } catch (err) {
      throw s3Failure(err, `list ${prefix}`);
    }
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (err) {
      if (awsError(err).status !== 404) throw s3Failure(err, `bucket ${this.bucket}`);
      if (!this.createBucket) {
        throw new StorageError('out-of-resources', `bucket ${this.bucket} does not exist`, { cause: err });
      }
    }
    try {
      await this.client.send(
        new CreateBucketCommand({
          Bucket: this.bucket,
          // us-east-1 is the one region that refuses an explicit location constraint.
          CreateBucketConfiguration:
            this.region === 'us-east-1' ? undefined : { LocationConstraint: this.region as BucketLocationConstraint },
        }),
      );
    } catch (err) {
      // Another node may have won the race to create it.
      const { name } = awsError(err);
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') {
        throw s3Failure(err, `create bucket ${this.bucket}`);
      }
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
