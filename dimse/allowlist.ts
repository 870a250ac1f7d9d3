import type { NodeServiceDeps } from './services.js';
import { findRemoteNodeByAe } from '../src/catalog/remote-nodes.js';

/** How long a remote_nodes answer is reused (a node added through /api/nodes is admitted after this). */
const CACHE_MS = 5_000;

/**
 * Calling-AE allowlist (services.admitCaller): when on (DICOM_ALLOWLIST; by default when
 * DICOM_ALLOWED_AES is set or MODE=online), a caller is admitted when its AE title is in
 * DICOM_ALLOWED_AES or is a remote_nodes row with allow_query_retrieve. Table answers are cached briefly: every association asks.
 * Undefined when off: everyone may associate.
 */
export function allowlist(
  core: Pick<NodeServiceDeps, 'db' | 'config' | 'log'>,
): ((callingAe: string, peerAddress: string) => Promise<boolean>) | undefined {
  const { allowlist: on, allowedAes } = core.config.dicom;
  if (!on) {
    // Online it is on unless DICOM_ALLOWLIST=false said otherwise: honoured, but said aloud.
    if (core.config.mode === 'online') {
      core.log.warn('DICOM_ALLOWLIST=false with MODE=online: any calling AE title may associate (store, query, retrieve)');
    }
    return undefined;
  }
  const fixed = new Set(allowedAes);
  const cache = new Map<string, { ok: boolean; at: number }>();
  return async (callingAe) => {
    const ae = callingAe.trim();
    if (fixed.has(ae)) return true;
    const hit = cache.get(ae);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.ok;
    const node = await findRemoteNodeByAe(core.db, ae);
    const ok = Boolean(node?.allowQueryRetrieve);
    if (cache.size > 1000) cache.clear();
    cache.set(ae, { ok, at: Date.now() });
    return ok;
  };
}
