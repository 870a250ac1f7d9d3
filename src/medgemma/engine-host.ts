import type { Logger } from 'pino';
import type { MedgemmaConfig } from '../config.js';
import { errorMessage } from '../errors.js';
import { createEngine } from './create-engine.js';
import type { Engine, EngineBackendName, ModelIdentity } from './engine.js';
import { modelIdentity, resolveModelPaths } from './model-identity.js';

export type EngineState = 'off' | 'starting' | 'ready' | 'failed';

export interface EngineStatus {
  state: EngineState;
  backend: EngineBackendName | 'off';
  /** Identity of the local model, `validated` included (absent for remote or before it is read). */
  model?: ModelIdentity;
  /** Why the engine is not available (names the model file when that is the cause). */
  error?: string;
  since: string;
}

/**
 * The MedGemma engine inside `radiant serve`. It starts in the background, after the DICOM and
 * HTTP listeners (a first llama.cpp build or a large model load takes minutes): a model that is
 * missing or corrupt leaves the engine `failed` with the reason, never the node down. Stopped
 * with the node, which stops llama-server.
 */
export class EngineHost {
  private engine: Engine | undefined;
  private starting: Promise<void> | undefined;
  private closed = false;
  private current: EngineStatus;

  constructor(
    private readonly config: MedgemmaConfig,
    private readonly log: Logger,
  ) {
    this.current = { state: config.backend === 'off' ? 'off' : 'starting', backend: config.backend, since: new Date().toISOString() };
  }

  get status(): EngineStatus {
    return this.current;
  }

  /** The ready engine, or undefined (see status for why). */
  get ready(): Engine | undefined {
    return this.current.state === 'ready' ? this.engine : undefined;
  }

  /**
   * Readiness (/readyz): 'not configured' when MEDGEMMA_BACKEND is off (the node needs no engine);
   * otherwise the engine must be ready and answer its probe within timeoutMs, or this throws why not.
   */
  async readiness(timeoutMs = 2000): Promise<'ok' | 'not configured'> {
    const s = this.current;
    if (this.config.backend === 'off') return 'not configured';
    if (s.state !== 'ready' || !this.engine) throw new Error(`engine ${s.state}${s.error ? `: ${s.error}` : ''}`);
    await this.engine.probe?.(AbortSignal.timeout(timeoutMs));
    return 'ok';
  }

  start(): void {
    if (this.config.backend === 'off' || this.starting) return;
    this.starting = (async () => {
      try {
        const engine = await createEngine(this.config, this.log);
        if (!engine) return this.set({ state: 'off' });
        if (this.closed) return void (await engine.close());
        this.engine = engine;
        const model = this.config.modelPath ? await this.identity() : undefined;
        this.set({ state: 'ready', ...(model ? { model } : {}) });
        this.log.info(
          {
            backend: engine.backend,
            model: model?.name,
            architecture: model?.architecture,
            quantization: model?.quantization,
            sha256: model?.sha256,
            mmproj: model?.mmproj?.name,
            validated: model?.validated,
            validation: model?.validation.reason,
          },
          'MedGemma engine ready',
        );
        if (model && !model.validated) this.log.warn({ reason: model.validation.reason }, 'MedGemma model not validated');
      } catch (err) {
        this.set({ state: 'failed', error: errorMessage(err) });
        this.log.error(
          { backend: this.config.backend, err: errorMessage(err) },
          'MedGemma engine not available; the node goes on serving DICOM',
        );
      }
    })();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.starting;
    await this.engine?.close();
    this.engine = undefined;
  }

  private async identity(): Promise<ModelIdentity | undefined> {
    const { model, mmproj } = resolveModelPaths(this.config.modelPath!, this.config.mmprojPath);
    return modelIdentity(model, mmproj, this.config.trustedSha256).catch(() => undefined);
  }

  private set(s: Omit<EngineStatus, 'backend' | 'since'>): void {
    this.current = { backend: this.config.backend, since: new Date().toISOString(), ...s };
  }
}
