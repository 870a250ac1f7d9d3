/** Builds (and starts) the engine chosen by the configuration; undefined when MEDGEMMA_BACKEND resolves to off. */
import type { Logger } from 'pino';
import type { MedgemmaConfig } from '../config.js';
import { LlamaServerEngine } from './backends/llama-server.js';
import { RemoteEngine } from './backends/remote.js';
import type { Engine } from './engine.js';
import { resolveModelPaths } from './model-identity.js';
import { ensureLlamaServer } from './build/build-llama.js';

export async function createEngine(c: MedgemmaConfig, logger?: Logger): Promise<Engine | undefined> {
  switch (c.backend) {
    case 'off':
      return undefined;
    case 'remote':
      return new RemoteEngine({
        endpoint: c.apiEndpoint!,
        apiKey: c.apiKey,
        model: c.apiModel,
        timeoutMs: c.timeoutMs,
        maxConcurrency: c.maxConcurrency,
        retries: c.maxRetries,
        maxRequestBytes: c.maxRequestBytes,
        allowHttp: c.apiAllowHttp,
        contextTokens: c.contextSize,
      });
    case 'llama-server': {
      const files = resolveModelPaths(c.modelPath!, c.mmprojPath);
      // MEDGEMMA_DEVICE picks the llama-server build flavour (auto: CUDA when nvcc is found)
      const serverPath = (await ensureLlamaServer(c.device === 'auto' ? {} : { cuda: c.device === 'cuda' })).serverPath;
      return new LlamaServerEngine({
        ...files,
        serverPath,
        threads: c.threads,
        ctxSize: c.contextSize,
        gpuLayers: c.device === 'cpu' ? 0 : c.gpuLayers,
        timeoutMs: c.timeoutMs,
        maxConcurrency: c.maxConcurrency,
        trustedSha256: c.trustedSha256,
        noRepack: c.llamaNoRepack,
        logger,
      }).start();
    }
    case 'node-llama-cpp': {
      // Loaded only for this backend: node-llama-cpp is a large library the other backends never need.
      const { NodeLlamaCppEngine } = await import('./backends/node-llama-cpp.js');
      const { model } = resolveModelPaths(c.modelPath!, c.mmprojPath);
      return new NodeLlamaCppEngine({
        model,
        device: c.device,
        contextSize: c.contextSize,
        gpuLayers: c.gpuLayers === 'all' ? 'max' : c.gpuLayers,
        threads: c.threads,
        timeoutMs: c.timeoutMs,
        maxConcurrency: c.maxConcurrency,
        trustedSha256: c.trustedSha256,
      }).start();
    }
  }
}
