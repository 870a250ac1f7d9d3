/** `radiant model pull hf:user/repo/file.gguf`: downloads with node-llama-cpp's downloader, with progress. */
import { createModelDownloader } from 'node-llama-cpp';
import { RadiantError } from '../errors.js';

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
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from Hugging Face within ${resolveTimeoutMs} ms`)), resolveTimeoutMs);
    });
    const downloader = await Promise.race([
      timeout,
      createModelDownloader({
        modelUri: uri,
        dirPath,
        showCliProgress: false,
        skipExisting: true,
        tokens: process.env.HF_TOKEN ? { huggingFace: process.env.HF_TOKEN } : undefined,
        onProgress: ({ totalSize, downloadedSize }) => {
          const pct = totalSize > 0 ? Math.floor((downloadedSize / totalSize) * 100) : 0;
          if (pct !== lastPct) {
            lastPct = pct;
            onProgress(`${pct}% ${(downloadedSize / 1024 ** 2).toFixed(1)} / ${(totalSize / 1024 ** 2).toFixed(1)} MiB`);
          }
        },
      }),
    ]);
    clearTimeout(timer);
    return await downloader.download();
  } catch (err) {
    const msg = (err as Error).message;
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    clearTimeout(timer);
    throw new ModelPullError(
      `cannot download ${uri}: ${msg}${cause ? ` (${cause})` : ''} — check the network, the repository/file name and HF_TOKEN for gated models`,
    );
  }
}
