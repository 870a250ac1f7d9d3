import dimse from 'dcmjs-dimse';
import { CancelRegistry, QR, runRetrieve } from './retrieve.js';
import type { AssociationContext, CGetRequest, CGetResponse, NodeParts, Respond } from './services.js';
import { networkChannel, runSubOperations, type NetworkLike, type ScuDeps } from './store-scu.js';

const { CGetResponse: CGetResponseC } = dimse.responses;

export const GET_SOP_CLASSES: readonly string[] = [QR.PatientRootGet, QR.StudyRootGet];

/**
 * C-GET SCP (PS3.4 C.4.3): the sub-operation C-STOREs go to the caller on its own association,
 * in the storage presentation contexts it proposed (with the SCP role, PS3.7 D.3.3.4); an
 * instance whose SOP class the caller did not propose fails as a sub-operation.
 */
export function getService(core: NodeParts, scu: ScuDeps, cancels: CancelRegistry) {
  return function get(ctx: AssociationContext, request: CGetRequest, respond: Respond<CGetResponse>): void {
    runRetrieve({
      kind: 'get',
      core,
      ctx,
      request,
      make: () => CGetResponseC.fromRequest(request),
      respond,
      cancels,
      // The sub-operations go back on the caller's association: the node writes them on its socket.
      send: (items, hooks) => {
        const network = ctx.scp as unknown as NetworkLike;
        return runSubOperations(scu, networkChannel(network, ctx.association, ctx.closed), items, hooks);
      },
    });
  };
}
