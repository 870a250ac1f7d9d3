import type { StoredInstanceRow } from '../catalog/catalog.js';
import type { RemoteNode } from '../catalog/remote-nodes.js';

/** What happened to one instance of a send. */
export interface SendOutcome {
  sopInstanceUid: string;
  ok: boolean;
  error?: string;
}

/** Sends stored instances to a remote node (C-STORE SCU, or STOW-RS for a DICOMweb node). */
export interface InstanceSender {
  send(node: RemoteNode, instances: StoredInstanceRow[]): Promise<SendOutcome[]>;
}
