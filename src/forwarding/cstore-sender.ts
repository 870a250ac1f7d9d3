import { storeToNode, type ScuDeps } from '../../dimse/store-scu.js';
import type { InstanceSender } from './sender.js';

/** Forwarding over DIMSE: the C-STORE SCU (one association per batch, transcoding as needed). */
export function cStoreSender(deps: ScuDeps): InstanceSender {
  return {
    async send(node, rows) {
      const report = await storeToNode(deps, node, rows);
      return report.results.map((r) =>
        r.outcome === 'failed'
          ? { sopInstanceUid: r.sopInstanceUid, ok: false, error: `C-STORE failed, status 0x${r.status.toString(16).padStart(4, '0').toUpperCase()}${r.comment ? `: ${r.comment}` : ''}` }
          : { sopInstanceUid: r.sopInstanceUid, ok: true },
      );
    },
  };
}
