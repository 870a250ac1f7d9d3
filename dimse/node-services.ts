import type { Core } from '../src/app.js';
import { findRemoteNodeByAe } from '../src/nodes/remote-nodes.js';
import { FIND_SOP_CLASSES, findService } from './find.js';
import type { ScpServices } from './services.js';
import { STORAGE_COMMITMENT_PUSH, storageCommitmentService } from './storage-commitment.js';

/**
 * The DIMSE services this node offers beyond C-ECHO/C-STORE, assembled from their modules
 * (query/retrieve, storage commitment) over the node's core parts.
 */
export function nodeServices(core: Core): ScpServices {
  const aeTitle = core.config.dicom.aeTitle;
  const find = findService({ db: core.db, aeTitle, log: core.log, audit: core.audit });
  const commitment = storageCommitmentService({
    db: core.db,
    storage: core.storage,
    aeTitle,
    log: core.log,
    audit: core.audit,
    findRemoteNode: (ae) => findRemoteNodeByAe(core.db, ae),
  });
  const abstractSyntaxes = new Set<string>([...FIND_SOP_CLASSES, STORAGE_COMMITMENT_PUSH]);
  return {
    abstractSyntaxes,
    find: find.find,
    cancel: find.cancel,
    nAction: commitment.nAction,
  };
}
