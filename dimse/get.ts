import dimse from 'dcmjs-dimse';
import type { Core } from '../src/app.js';
import { errorMessage } from '../src/errors.js';
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
import type { AssociationContext, CGetRequest, CGetResponse, Respond } from './services.js';
import { networkChannel, runSubOperations, type ScuDeps } from './store-scu.js';

const { CGetResponse: CGetResponseC } = dimse.responses;

export const GET_SOP_CLASSES: readonly string[] = [QR.PatientRootGet, QR.StudyRootGet];

/**
 * C-GET SCP (PS3.4 C.4.3): the sub-operation C-STOREs go to the caller on its own association,
 * in the storage presentation contexts it proposed (with the SCP role, PS3.7 D.3.3.4); an
 * instance whose SOP class the caller did not propose fails as a sub-operation.
 */
export function getService(core: Pick<Core, 'db' | 'log' | 'audit'>, scu: ScuDeps, cancels: CancelRegistry) {
  return function get(ctx: AssociationContext, request: CGetRequest, respond: Respond<CGetResponse>): void {
    const make = () => CGetResponseC.fromRequest(request);
    const messageId = request.getMessageId();
    void (async () => {
      let items;
      try {
        items = await resolveIdentifier(core.db, request.getAffectedSopClassUid(), identifierOf(request));
      } catch (err) {
        if (err instanceof IdentifierError) return respond(errorResponse(make, RetrieveStatus.IdentifierDoesNotMatch, err.message));
        throw err;
      }
      const started = Date.now();
      const channel = networkChannel(ctx.scp, ctx.association, ctx.closed);
      const report = await runSubOperations(scu, channel, items, {
        progress: (r) => {
          if (r.remaining > 0) respond(countsResponse(make, RetrieveStatus.Pending, r));
        },
        cancelled: () => cancels.isCancelled(ctx, messageId),
      });
      cancels.forget(ctx, messageId);
      respond(finalResponse(ctx, request, make, report));
      core.log.info(
        { calling: ctx.callingAeTitle, completed: report.completed, warning: report.warning, failed: report.failed, cancelled: report.cancelled, ms: Date.now() - started },
        'C-GET done',
      );
      void core.audit.record({
        actorType: 'ae',
        actor: ctx.callingAeTitle,
        peer: ctx.peer,
        action: 'dimse.get',
        resourceType: 'study',
        outcome: report.failed > 0 && report.completed === 0 ? 'failure' : 'success',
        details: { matched: items.length, completed: report.completed, warning: report.warning, failed: report.failed, cancelled: report.cancelled },
      });
    })().catch((err: unknown) => {
      core.log.error({ err: errorMessage(err), calling: ctx.callingAeTitle }, 'C-GET failed');
      respond(errorResponse(make, RetrieveStatus.UnableToProcess, errorMessage(err)));
    });
  };
}
