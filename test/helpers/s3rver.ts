/// <reference path="./s3rver.d.ts" />
import crypto from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

export interface RunningS3rver {
  endpoint: string;
  /** s3rver knows this one key pair only (it does not verify SigV4 signatures). */
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

type CipherFactory = (algorithm: string, key: Buffer, iv: Buffer, ...rest: unknown[]) => unknown;
const patchable = crypto as unknown as { createCipheriv: CipherFactory; createDecipheriv: CipherFactory };
let desPatchUsers = 0;
let restoreDes: (() => void) | undefined;

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES, which OpenSSL 3 (Node >= 17)
 * refuses without --openssl-legacy-provider: every truncated listing fails with a 500. While an
 * s3rver runs, DES is served by AES-128-CBC with key and IV doubled. The token stays opaque and
 * round-trips, which is all a client may rely on.
 */
function patchDes(): void {
  if (desPatchUsers++ > 0) return;
  const original = { cipher: patchable.createCipheriv, decipher: patchable.createDecipheriv };
  const viaAes =
    (factory: CipherFactory): CipherFactory =>
    (algorithm, key, iv, ...rest) =>
      /^des(-cbc)?$/i.test(algorithm)
        ? factory('aes-128-cbc', Buffer.concat([key, key]), Buffer.concat([iv, iv]), ...rest)
        : factory(algorithm, key, iv, ...rest);
  patchable.createCipheriv = viaAes(original.cipher);
  patchable.createDecipheriv = viaAes(original.decipher);
  restoreDes = () => {
    patchable.createCipheriv = original.cipher;
    patchable.createDecipheriv = original.decipher;
  };
}

function unpatchDes(): void {
  if (--desPatchUsers === 0) restoreDes?.();
}

/** An in-process s3rver on 127.0.0.1, on a port the OS picks, with its own data directory. */
export async function startS3rver(): Promise<RunningS3rver> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'radiant-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  patchDes();
  let port: number;
  try {
    ({ port } = await server.run());
  } catch (err) {
    unpatchDes();
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    async stop() {
      try {
        await server.close();
      } finally {
        unpatchDes();
        await rm(directory, { recursive: true, force: true });
      }
    },
  };
}
