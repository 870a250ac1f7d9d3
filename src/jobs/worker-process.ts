import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import { openCore } from '../app.js';
import type { Logger } from '../logger.js';
import { EngineHost } from '../medgemma/engine-host.js';
import { jobHandlers } from './handlers.js';
import { startJobWorker } from './start.js';

/**
 * `radiant worker`: the node's index and storage, no listeners, a job worker until SIGINT or
 * SIGTERM. It may run beside `radiant serve` on the same data, so it gets its own spool
 * directory: openCore empties the one it is given, and serve's is in use.
 */
export async function runWorkerProcess(config: Config, log: Logger): Promise<void> {
  const tempDir = path.join(path.dirname(config.tempDir), `worker-${process.pid}`);
  const core = await openCore({ ...config, tempDir }, log, { cleanStorageTemp: false });
  // A worker runs its own engine (its own llama-server, or the remote endpoint's client).
  const engine = new EngineHost(config.medgemma, log);
  engine.start();
  const worker = startJobWorker(core, log, jobHandlers(core, engine));
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info({ signal }, 'shutting down');
  try {
    await worker.stop();
    await engine.close();
  } finally {
    await core.close();
    await fsp.rm(tempDir, { recursive: true, force: true });
  }
}
