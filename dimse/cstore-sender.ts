import type { InstanceSender } from '../src/forwarding/sender.js';
import { storeToNode, type ScuDeps } from './store-scu.js';

/**
 * Forwarding over DIMSE: the C-STORE SCU (one association per batch, transcoding as needed) as
 * the sender forwarding declares (src/forwarding/sender.ts); src/app.ts hands it to the forwarder,
 * so forwarding never imports the protocol.
 */
export function cStoreSender(deps: ScuDeps): InstanceSender {
  return {
    async send(node, rows) {
      const report = await storeToNode(deps, node, rows);
      return report.results.map((r) =>
        r.outcome === 'failed'
          ? {
              sopInstanceUid: r.sopInstanceUid,
              ok: false,
              error: `C-STORE failed, status 0x${r.status.toString(16).padStart(4, '0').toUpperCase()}${r.comment ? `: ${r.comment}` : ''}`,
            }
          : { sopInstanceUid: r.sopInstanceUid, ok: true },
      );
    },
  };
}
