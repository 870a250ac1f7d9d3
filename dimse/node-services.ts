import type { Core } from '../src/app.js';
import type { ScpServices } from './services.js';
import { allowlist } from './allowlist.js';
import { getService, GET_SOP_CLASSES } from './get.js';
import { moveService, MOVE_SOP_CLASSES } from './move.js';
import { CancelRegistry } from './retrieve.js';
import { scuDeps } from './store-scu.js';

/**
 * The DIMSE services this node offers beyond C-ECHO/C-STORE, assembled from their modules
 * (query/retrieve, storage commitment) over the node's core parts.
 */
export function nodeServices(core: Core): ScpServices {
  const abstractSyntaxes = new Set<string>();
  // C-MOVE / C-GET (dimse/move.ts, dimse/get.ts) and the calling-AE allowlist (dimse/allowlist.ts).
  const scu = scuDeps(core);
  const cancels = new CancelRegistry();
  for (const uid of [...MOVE_SOP_CLASSES, ...GET_SOP_CLASSES]) abstractSyntaxes.add(uid);
  return {
    abstractSyntaxes,
    move: moveService(core, scu, cancels),
    get: getService(core, scu, cancels),
    cancel: (ctx, messageId) => cancels.cancel(ctx, messageId),
    admitCaller: allowlist(core),
  };
}
