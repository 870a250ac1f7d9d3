/**
 * `radiant model pull hf:user/repo/file.gguf`: downloads with node-llama-cpp's downloader, with
 * progress, then checks the file's SHA-256 against the hub's Git LFS pointer (the `X-Linked-Etag`
 * of the resolve URL, which Hugging Face sets to the LFS object's sha256): a mismatch deletes the
 * file and fails. The hub is HF_ENDPOINT (or MODEL_ENDPOINT, as node-llama-cpp reads it).
 */
import fs from 'node:fs';
import { RadiantError } from '../errors.js';
import { fileSha256 } from './model-identity.js';

/** `usage`: the command line was wrong; else the download failed (network, repository, token). */
export class ModelPullError extends RadiantError {
  constructor(
    message: string,
    readonly usage = false,
  ) {
    super(usage ? 'invalid-input' : 'out-of-resources', message);
    this.name = 'ModelPullError';
  }
}

const HF_URI = /^hf:[A-Za-z0-9][\w.-]*\/[\w.-]+\/(?:[\w.-]+\/)*[\w.-]+\.gguf$/;

export function validatePullUri(uri: string | undefined): string {
  if (!uri) throw new ModelPullError('give a model as hf:<user>/<repo>/<file>.gguf', true);
  if (!HF_URI.test(uri)) throw new ModelPullError(`'${uri}' is not of the form hf:<user>/<repo>/<file>.gguf`, true);
  return uri;
}

/** The hub root, as node-llama-cpp resolves it (so both talk to the same hub). */
function hubRoot(): string {
  const env = process.env.MODEL_ENDPOINT || process.env.HF_ENDPOINT || 'https://huggingface.co/';
  return env.endsWith('/') ? env : `${env}/`;
}

/** An ETag value as a SHA-256 (Hugging Face quotes it; weak validators carry W/), or undefined. */
export function lfsSha256(etag: string | null): string | undefined {
  const v = etag?.trim().replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase();
  return v && /^[0-9a-f]{64}$/.test(v) ? v : undefined;
}

/** HEAD on the resolve URL without following the redirect to the CDN: its X-Linked-Etag is the LFS sha256. */
async function hubSha256(uri: string, signal: AbortSignal): Promise<string> {
  const [user, repo, ...file] = uri.slice('hf:'.length).split('/');
  const url = `${hubRoot()}${[user!, repo!].map(encodeURIComponent).join('/')}/resolve/main/${file.map(encodeURIComponent).join('/')}`;
  const headers: Record<string, string> = process.env.HF_TOKEN ? { authorization: `Bearer ${process.env.HF_TOKEN}` } : {};
  const res = await fetch(url, { method: 'HEAD', redirect: 'manual', headers, signal });
  if (res.status >= 400) throw new Error(`the hub answered ${res.status} for ${url}`);
  const sha = lfsSha256(res.headers.get('x-linked-etag')) ?? lfsSha256(res.headers.get('etag'));
  if (!sha) throw new Error(`the hub gave no SHA-256 (Git LFS pointer) for ${url}: the download could not be verified`);
  return sha;
}

/** resolveTimeoutMs bounds the step that looks the file up (node-llama-cpp retries network errors for long). */
export async function pullModel(
  uri: string,
  dirPath: string,
  onProgress: (line: string) => void,
  resolveTimeoutMs = 30_000,
): Promise<string> {
  validatePullUri(uri);
  let lastPct = -1;
  let timer: NodeJS.Timeout | undefined;
  let file: string;
  let expected: string;
  try {
    const ctl = new AbortController();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ctl.abort();
        reject(new Error(`no answer from Hugging Face within ${resolveTimeoutMs} ms`));
      }, resolveTimeoutMs);
    });
    const [sha, downloader] = await Promise.race([
      timeout,
      Promise.all([
        hubSha256(uri, ctl.signal),
        // node-llama-cpp's downloader, loaded for a pull only (a large library the node rarely needs).
        import('node-llama-cpp').then(({ createModelDownloader }) =>
          createModelDownloader({
            modelUri: uri,
            dirPath,
            showCliProgress: false,
            skipExisting: true,
            endpoints: { huggingFace: hubRoot() },
            tokens: process.env.HF_TOKEN ? { huggingFace: process.env.HF_TOKEN } : undefined,
            onProgress: ({ totalSize, downloadedSize }) => {
              const pct = totalSize > 0 ? Math.floor((downloadedSize / totalSize) * 100) : 0;
              if (pct !== lastPct) {
                lastPct = pct;
                onProgress(`${pct}% ${(downloadedSize / 1024 ** 2).toFixed(1)} / ${(totalSize / 1024 ** 2).toFixed(1)} MiB`);
              }
            },
          }),
        ),
      ]),
    ]);
    clearTimeout(timer);
    expected = sha;
    file = await downloader.download();
  } catch (err) {
    const msg = (err as Error).message;
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    clearTimeout(timer);
    throw new ModelPullError(
      `cannot download ${uri}: ${msg}${cause ? ` (${cause})` : ''} — check the network, the repository/file name and HF_TOKEN for gated models`,
    );
  }
  const got = await fileSha256(file);
  if (got !== expected) {
    // skipExisting may have kept an earlier, damaged copy: either way the file is not the hub's
    fs.rmSync(file, { force: true });
    throw new ModelPullError(
      `${file}: SHA-256 ${got} differs from the hub's LFS pointer ${expected}; the file was deleted (a damaged or altered download)`,
    );
  }
  onProgress(`SHA-256 ${got} matches the hub's LFS pointer`);
  return file;
}
