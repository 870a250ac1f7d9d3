import type { Core } from '../src/app.js';
import type { ScpServices } from './services.js';

/**
 * The DIMSE services this node offers beyond C-ECHO/C-STORE, assembled from their modules
 * (query/retrieve, storage commitment) over the node's core parts.
 */
export function nodeServices(_core: Core): ScpServices {
  const abstractSyntaxes = new Set<string>();
  return { abstractSyntaxes };
}
