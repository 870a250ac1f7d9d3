import dimse from 'dcmjs-dimse';
import type { Core } from '../src/app.js';
import { errorMessage } from '../src/errors.js';
import { findRemoteNodeByAe } from '../src/nodes/remote-nodes.js';
import {
  CancelRegistry,
  IdentifierError,
  QR,
  RetrieveStatus,
  countsResponse,
  errorResponse,
  finalResponse,
  identifierOf,
  resolveIdentifier,
} from './retrieve.js';
import type { AssociationContext, CMoveRequest, CMoveResponse, Respond } from './services.js';
import { storeToNode, type ScuDeps } from './store-scu.js';

const { CMoveResponse: CMoveResponseC } = dimse.responses;

export const MOVE_SOP_CLASSES: readonly string[] = [QR.PatientRootMove, QR.StudyRootMove];

/**
 * C-MOVE SCP (PS3.4 C.4.2): the identifier is resolved to stored instances, which are sent to
 * the Move Destination (a remote_nodes row with allow_query_retrieve) on a new association,
 * with a pending response after each sub-operation and a final one with the counts.
 */
export function moveService(core: Pick<Core, 'db' | 'log' | 'audit'>, scu: ScuDeps, cancels: CancelRegistry) {
  return function move(ctx: AssociationContext, request: CMoveRequest, respond: Respond<CMoveResponse>): void {
    const make = () => CMoveResponseC.fromRequest(request);
    const messageId = request.getMessageId();
    void (async () => {
      const destinationAe = String(request.getCommandDataset().getElement('MoveDestination') ?? '').trim();
      const sopClass = request.getAffectedSopClassUid();
      const node = destinationAe ? await findRemoteNodeByAe(core.db, destinationAe) : undefined;
      if (!node || !node.allowQueryRetrieve) {
        core.log.warn({ calling: ctx.callingAeTitle, destination: destinationAe }, 'C-MOVE refused: move destination unknown');
        return respond(errorResponse(make, RetrieveStatus.MoveDestinationUnknown, `move destination ${destinationAe} unknown`));
      }
      let items;
      try {
        items = await resolveIdentifier(core.db, sopClass, identifierOf(request));
      } catch (err) {
        if (err instanceof IdentifierError) return respond(errorResponse(make, RetrieveStatus.IdentifierDoesNotMatch, err.message));
        throw err;
      }
      const started = Date.now();
      // A caller that went away gets no more sub-operations.
      let callerGone = false;
      void ctx.closed.then(() => (callerGone = true));
      const report = await storeToNode(scu, node, items, {
        progress: (r) => {
          if (r.remaining > 0) respond(countsResponse(make, RetrieveStatus.Pending, r));
        },
        cancelled: () => callerGone || cancels.isCancelled(ctx, messageId),
      });
      cancels.forget(ctx, messageId);
      if (!callerGone) respond(finalResponse(ctx, request, make, report));
      core.log.info(
        { calling: ctx.callingAeTitle, destination: destinationAe, completed: report.completed, warning: report.warning, failed: report.failed, cancelled: report.cancelled, ms: Date.now() - started },
        'C-MOVE done',
      );
      void core.audit.record({
        actorType: 'ae',
        actor: ctx.callingAeTitle,
        peer: ctx.peer,
        action: 'dimse.move',
        resourceType: 'study',
        outcome: report.failed > 0 && report.completed === 0 ? 'failure' : 'success',
        details: { destination: destinationAe, matched: items.length, completed: report.completed, warning: report.warning, failed: report.failed, cancelled: report.cancelled },
      });
    })().catch((err: unknown) => {
      core.log.error({ err: errorMessage(err), calling: ctx.callingAeTitle }, 'C-MOVE failed');
      respond(errorResponse(make, RetrieveStatus.UnableToProcess, errorMessage(err)));
    });
  };
}
