import dimse from 'dcmjs-dimse';
import { findRemoteNodeByAe } from '../src/catalog/remote-nodes.js';
import { DimseStatus } from '../src/dicom/dimse-status.js';
import { errorMessage } from '../src/errors.js';
import { CancelRegistry, QR, errorResponse, refused, runRetrieve } from './retrieve.js';
import { dimseStatusOf } from './error-status.js';
import type { AssociationContext, CMoveRequest, CMoveResponse, NodeParts, Respond } from './services.js';
import { storeToNode, type ScuDeps } from './store-scu.js';

const { CMoveResponse: CMoveResponseC } = dimse.responses;

export const MOVE_SOP_CLASSES: readonly string[] = [QR.PatientRootMove, QR.StudyRootMove];

/**
 * C-MOVE SCP (PS3.4 C.4.2): the identifier is resolved to stored instances, which are sent to
 * the Move Destination (a remote_nodes row with allow_query_retrieve) on a new association,
 * with a pending response after each sub-operation and a final one with the counts.
 */
export function moveService(core: NodeParts, scu: ScuDeps, cancels: CancelRegistry) {
  return function move(ctx: AssociationContext, request: CMoveRequest, respond: Respond<CMoveResponse>): void {
    const make = () => CMoveResponseC.fromRequest(request);
    const destinationAe = String(request.getCommandDataset().getElement('MoveDestination') ?? '').trim();
    void (destinationAe ? findRemoteNodeByAe(core.db, destinationAe) : Promise.resolve(undefined)).then(
      (node) => {
        if (!node || !node.allowQueryRetrieve) {
          core.log.warn({ calling: ctx.callingAeTitle, destination: destinationAe }, 'C-MOVE refused: move destination unknown');
          const details = { destination: destinationAe };
          refused({ kind: 'move', core, ctx, request, details }, DimseStatus.MoveDestinationUnknown, 'move destination unknown');
          return respond(errorResponse(make, DimseStatus.MoveDestinationUnknown, `move destination ${destinationAe} unknown`));
        }
        runRetrieve({
          kind: 'move',
          core,
          ctx,
          request,
          make,
          respond,
          cancels,
          send: (items, hooks) =>
            storeToNode(scu, node, items, hooks, {
              associations: scu.moveAssociations,
              moveOriginator: { aeTitle: ctx.callingAeTitle, messageId: request.getMessageId() },
            }),
          details: { destination: destinationAe },
        });
      },
      (err: unknown) => {
        core.log.error({ err: errorMessage(err), calling: ctx.callingAeTitle }, 'C-MOVE failed');
        const details = { destination: destinationAe };
        const status = dimseStatusOf('retrieve', err);
        refused({ kind: 'move', core, ctx, request, details }, status, errorMessage(err));
        respond(errorResponse(make, status, errorMessage(err)));
      },
    );
  };
}
