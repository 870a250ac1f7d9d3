import { findRemoteNodeByAe } from '../src/catalog/remote-nodes.js';
import { allowlist } from './allowlist.js';
import { FIND_SOP_CLASSES, findService } from './find.js';
import { getService, GET_SOP_CLASSES } from './get.js';
import { moveService, MOVE_SOP_CLASSES } from './move.js';
import { CancelRegistry } from './retrieve.js';
import type { NodeServiceDeps, ScpServices } from './services.js';
import { STORAGE_COMMITMENT_PUSH, storageCommitmentService } from './storage-commitment.js';
import { scuDeps } from './store-scu.js';

/**
 * The DIMSE services this node offers beyond C-ECHO/C-STORE, assembled from their modules
 * (query/retrieve, storage commitment, the calling-AE allowlist) over the node's parts, which
 * src/app.ts hands over.
 */
export function nodeServices(core: NodeServiceDeps): ScpServices {
  const aeTitle = core.config.dicom.aeTitle;
  const find = findService({ db: core.readDb ?? core.db, aeTitle, log: core.log, audit: core.audit });
  const commitment = storageCommitmentService({
    db: core.db,
    storage: core.storage,
    aeTitle,
    log: core.log,
    audit: core.audit,
    findRemoteNode: (ae) => findRemoteNodeByAe(core.db, ae),
  });
  const scu = scuDeps(core);
  const cancels = new CancelRegistry();
  const abstractSyntaxes = new Set<string>([...FIND_SOP_CLASSES, STORAGE_COMMITMENT_PUSH, ...MOVE_SOP_CLASSES, ...GET_SOP_CLASSES]);
  return {
    abstractSyntaxes,
    find: find.find,
    move: moveService(core, scu, cancels),
    get: getService(core, scu, cancels),
    // A C-CANCEL names a Message ID: whichever service runs it stops.
    cancel: (ctx, messageId) => {
      find.cancel(ctx, messageId);
      cancels.cancel(ctx, messageId);
    },
    nAction: commitment.nAction,
    admitCaller: allowlist(core),
  };
}
