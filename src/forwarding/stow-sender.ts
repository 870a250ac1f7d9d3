import { tag } from '../dicom/dictionary.js';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { StoredInstanceRow } from '../catalog/catalog.js';
import type { RemoteNode } from '../catalog/remote-nodes.js';
import type { BlobStorage } from '../../storage/types.js';
import { errorMessage } from '../errors.js';
import type { SendOutcome } from './sender.js';

/**
 * STOW-RS client (PS3.18 §10.5): the instances in one `multipart/related;
 * type="application/dicom"` POST to `{stow_url}/studies`, streamed from storage part after part.
 * The answer's Failed SOP Sequence (0008,1198) names the instances refused (202 or 409); any other
 * failure (network, 4xx/5xx) fails them all.
 */

type JsonAttr = { vr?: string; Value?: unknown[] };
type JsonDataset = Record<string, JsonAttr>;

function failedUids(body: unknown): Map<string, string> {
  const out = new Map<string, string>();
  const ds = (Array.isArray(body) ? body[0] : body) as JsonDataset | undefined;
  for (const item of (ds?.[tag('FailedSOPSequence')]?.Value ?? []) as JsonDataset[]) {
    const uid = item[tag('ReferencedSOPInstanceUID')]?.Value?.[0];
    const reason = item[tag('FailureReason')]?.Value?.[0];
    if (typeof uid === 'string')
      out.set(
        uid,
        `refused by the destination (FailureReason ${typeof reason === 'number' ? `0x${reason.toString(16).toUpperCase()}` : '?'})`,
      );
  }
  return out;
}

export async function stowSend(
  storage: BlobStorage,
  node: RemoteNode,
  instances: StoredInstanceRow[],
  timeoutMs = 300_000,
): Promise<SendOutcome[]> {
  const all = (error: string) => instances.map((i) => ({ sopInstanceUid: i.sop_instance_uid, ok: false, error }));
  if (!node.stowUrl) return all('the node has no STOW-RS URL');
  const boundary = `radiant-${randomBytes(12).toString('hex')}`;
  const body = Readable.from(
    (async function* () {
      for (const i of instances) {
        yield Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1');
        for await (const chunk of await storage.get(i.storage_key)) yield chunk as Buffer;
        yield Buffer.from('\r\n', 'latin1');
      }
      yield Buffer.from(`--${boundary}--\r\n`, 'latin1');
    })(),
  );
  const headers: Record<string, string> = {
    'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
    accept: 'application/dicom+json',
  };
  if (node.stowAuthorization) headers.authorization = node.stowAuthorization;
  let res: Response;
  try {
    res = await fetch(`${node.stowUrl.replace(/\/+$/, '')}/studies`, {
      method: 'POST',
      headers,
      body: Readable.toWeb(body) as unknown as NonNullable<RequestInit['body']>,
      duplex: 'half',
      signal: AbortSignal.timeout(timeoutMs),
    } as RequestInit);
  } catch (err) {
    return all(`STOW-RS request failed: ${errorMessage(err)}`);
  }
  const text = await res.text().catch(() => '');
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.status !== 200 && res.status !== 202 && res.status !== 409) return all(`STOW-RS answered HTTP ${res.status}`);
  const failed = failedUids(json);
  return instances.map((i) => {
    const why = failed.get(i.sop_instance_uid) ?? (res.status === 409 ? 'refused by the destination (HTTP 409)' : undefined);
    return why ? { sopInstanceUid: i.sop_instance_uid, ok: false, error: why } : { sopInstanceUid: i.sop_instance_uid, ok: true };
  });
}
