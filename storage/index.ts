import { LocalStorage } from './local.js';
import type { BlobStorage } from './types.js';
import { countStorageErrors } from '../src/observability/node-metrics.js';

export type StorageOptions =
  | { type: 'local'; root: string }
  | {
      type: 's3';
      bucket: string;
      region: string;
      accessKeyId?: string;
      secretAccessKey?: string;
      endpoint?: string;
      createBucket?: boolean;
      sse?: 'AES256' | 'aws:kms';
      sseKmsKeyId?: string;
    }
  | { type: 'azure'; connectionString: string; container: string; createContainer?: boolean; encryptionScope?: string };

/** The configured back end. A cloud one's SDK is loaded only when it is the one configured. */
export async function createStorage(opts: StorageOptions): Promise<BlobStorage> {
  switch (opts.type) {
    case 'local':
      return countStorageErrors(new LocalStorage({ root: opts.root }), 'local');
    case 's3': {
      const { S3Storage } = await import('./s3.js');
      return countStorageErrors(new S3Storage(opts), 's3');
    }
    case 'azure': {
      const { AzureBlobStorage } = await import('./azure.js');
      return countStorageErrors(new AzureBlobStorage(opts), 'azure');
    }
    default: {
      const unknown: never = opts;
      throw new Error(`unknown storage type ${JSON.stringify(unknown)}`);
    }
  }
}

export type { BlobStorage } from './types.js';
export { LocalStorage } from './local.js';
