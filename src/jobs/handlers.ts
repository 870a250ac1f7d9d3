import type { Core } from '../app.js';
import type { JobHandlers } from './worker.js';

/**
 * The job kinds this node runs, by kind. Every worker (`radiant worker`, or the one inside
 * `radiant serve`) gets the same registry, so any node can take any job.
 */
export function jobHandlers(_core: Core): JobHandlers {
  return {};
}
