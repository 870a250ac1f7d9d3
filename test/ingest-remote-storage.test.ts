import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { type RunningAzurite, startAzurite } from './helpers/azurite.js';
import { describeIngestSuite } from './helpers/ingest-suite.js';
import { type RunningS3rver, startS3rver } from './helpers/s3rver.js';

/**
 * The one ingest path with the index on SQLite and the blobs on remote object storage: S3 (a
 * real s3rver) and Azure Blob Storage (a real Azurite). The node's own check() refuses a missing
 * bucket or container, so each is created first, the way an operator provisions it.
 */

const S3_BUCKET = 'radiant-ingest';
const AZURE_CONTAINER = 'radiant-ingest';

let s3: RunningS3rver | undefined;
describeIngestSuite('SQLite + S3 storage', async () => {
  s3 = await startS3rver();
  const region = 'us-east-1';
  const client = new S3Client({
    endpoint: s3.endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: S3_BUCKET }));
    await client.send(new HeadBucketCommand({ Bucket: S3_BUCKET }));
  } finally {
    client.destroy();
  }
  return {
    STORAGE_TYPE: 's3',
    S3_BUCKET,
    S3_ENDPOINT: s3.endpoint,
    S3_ACCESS_KEY: s3.accessKeyId,
    S3_SECRET_KEY: s3.secretAccessKey,
    S3_REGION: region,
  };
});

let azurite: RunningAzurite | undefined;
describeIngestSuite('SQLite + Azure Blob storage', async () => {
  azurite = await startAzurite();
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(AZURE_CONTAINER);
  await container.create();
  if (!(await container.exists())) throw new Error(`container ${AZURE_CONTAINER} was not created`);
  return {
    STORAGE_TYPE: 'azure',
    AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    AZURE_CONTAINER,
  };
});

after(async () => {
  await s3?.stop();
  await azurite?.stop();
});
