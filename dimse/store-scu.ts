import fs from 'node:fs';
import type { Socket } from 'node:net';
import dimse from 'dcmjs-dimse';
import type { BlobStorage } from '../storage/types.js';
import { IntegrityError, verifiedReadAll } from '../storage/integrity.js';
import type { Transcoder } from '../src/dicom/transcoder.js';
import { whyNotTranscodable } from '../src/dicom/transcode-syntaxes.js';
import { tagNumber } from '../src/dicom/dictionary.js';
import { fileMeta, metaText } from '../src/dicom/structure.js';
import { TS, transferSyntax } from '../src/dicom/transfer-syntax.js';
import { DimseStatus, isWarningStatus } from '../src/dicom/dimse-status.js';
import { errorMessage } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { RemoteNode } from '../src/catalog/remote-nodes.js';
import type { AssociationT } from './services.js';

/**
 * C-STORE and C-ECHO SCU (PS3.4 B, A; PS3.7 9.1.1): sends stored instances to a remote node on
 * one association, and the same sub-operation loop serves C-GET, whose C-STOREs go back on the
 * caller's own association. One instance is read from storage at a time (plus the next one,
 * read ahead while the current one is on the wire), never a whole study.
 *
 * The data set goes on the wire as stored (its bytes after the Part 10 meta, not re-encoded by
 * dcmjs) when the peer accepted the stored transfer syntax; otherwise it is transcoded by the
 * node's transcoder to a syntax the peer accepted for that SOP class.
 */

const { Client, Dataset } = dimse;
const { CStoreRequest, CEchoRequest } = dimse.requests;
const { PresentationContext } = dimse.association;
const ACCEPT = dimse.constants.PresentationContextResult.Accept;

type CStoreRequestT = InstanceType<typeof CStoreRequest>;
type ResponseT = InstanceType<typeof dimse.responses.Response>;
type ClientT = InstanceType<typeof Client>;

/** What is needed of a stored instance to send it (a row of catalog's StoredInstanceRow). */
export interface StoreItem {
  sop_class_uid: string;
  sop_instance_uid: string;
  transfer_syntax_uid: string;
  storage_key: string;
  size_bytes: number;
  /** The blob's SHA-256 from the index: a blob that differs is not sent (storage/integrity.ts). */
  sha256?: string | null;
}

export type SubOperationOutcome = 'completed' | 'warning' | 'failed';

export interface SubOperationResult {
  sopInstanceUid: string;
  outcome: SubOperationOutcome;
  /** The peer's C-STORE status, or the local one a sub-operation failed with before sending. */
  status: number;
  comment?: string;
}

export interface StoreReport {
  completed: number;
  warning: number;
  failed: number;
  results: SubOperationResult[];
  /** Instances not attempted because the operation was cancelled. */
  remaining: number;
  cancelled: boolean;
}

export function outcomeOf(status: number): SubOperationOutcome {
  if (status === DimseStatus.Success) return 'completed';
  if (isWarningStatus(status)) return 'warning';
  return 'failed';
}

export interface TlsFiles {
  cert?: string;
  key?: string;
  ca?: string;
}

export interface ScuDeps {
  storage: BlobStorage;
  transcoder: Transcoder;
  log: Logger;
  /** This node's AE title (calling AE). */
  aeTitle: string;
  tls?: TlsFiles;
  /** Per-PDU and association timeouts, ms. */
  timeoutMs?: number;
}

/** Client.send options for a node: one timeout for connect, association and PDUs; TLS if the node says so. */
function sendOptions(deps: Pick<ScuDeps, 'tls'>, node: Pick<RemoteNode, 'tls'>, timeout: number): Parameters<ClientT['send']>[4] {
  return {
    connectTimeout: timeout,
    associationTimeout: timeout,
    pduTimeout: timeout,
    ...(node.tls ? { securityOptions: securityOptions(deps.tls) } : {}),
  };
}

export function securityOptions(tls: TlsFiles | undefined): Record<string, unknown> {
  const read = (p: string | undefined) => (p ? fs.readFileSync(p) : undefined);
  return { cert: read(tls?.cert), key: read(tls?.key), ca: read(tls?.ca), rejectUnauthorized: true };
}

/** A data set whose encoded bytes are already known: sent as they are. */
class EncodedDataset extends Dataset {
  constructor(
    private readonly encoded: Buffer,
    transferSyntaxUid: string,
    sopClassUid: string,
    sopInstanceUid: string,
  ) {
    super({ SOPClassUID: sopClassUid, SOPInstanceUID: sopInstanceUid }, transferSyntaxUid);
  }

  override getDenaturalizedDataset(): Buffer {
    return this.encoded;
  }
}

/** (0002,0010) Transfer Syntax UID's element number in the File Meta group. */
const TRANSFER_SYNTAX_ELEMENT = tagNumber('TransferSyntaxUID') & 0xffff;

/** Offset of the data set in a Part 10 file and the meta's transfer syntax. */
export function splitPart10(bytes: Buffer): { offset: number; transferSyntaxUid: string } {
  if (bytes.length < 132 || bytes.toString('latin1', 128, 132) !== 'DICM') throw new Error('not a DICOM Part 10 file');
  const meta = fileMeta(bytes);
  const tsElement = meta.elements.find((e) => e.element === TRANSFER_SYNTAX_ELEMENT);
  const ts = tsElement ? metaText(bytes, tsElement) : '';
  if (!ts) throw new Error('Part 10 meta without a transfer syntax');
  return { offset: meta.end, transferSyntaxUid: ts };
}

/** Accepted transfer syntaxes per abstract syntax on an association. */
export function acceptedSyntaxes(association: AssociationT): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { id } of association.getPresentationContexts()) {
    const pc = association.getPresentationContext(id);
    const ts = pc.getAcceptedTransferSyntaxUid();
    if (pc.getResult() !== ACCEPT || !ts) continue;
    const list = out.get(pc.getAbstractSyntaxUid()) ?? [];
    if (!list.includes(ts)) list.push(ts);
    out.set(pc.getAbstractSyntaxUid(), list);
  }
  return out;
}

/** The syntax an instance goes out in: as stored when accepted, else one it can be transcoded to. */
export function chooseSyntax(stored: string, accepted: string[]): string | undefined {
  if (accepted.includes(stored)) return stored;
  const preference = [TS.ExplicitVRLittleEndian, TS.ImplicitVRLittleEndian, ...accepted];
  // A peer gets what was stored or a lossless form of it, never pixels the node degraded on its own
  // (the transcoder offers lossy targets to DICOMweb clients that ask for them by name).
  const lossless = (t: string) => transferSyntax(t)?.lossy === false;
  return preference.find((t) => accepted.includes(t) && lossless(t) && !whyNotTranscodable(stored, t));
}

/** Where sub-operation C-STOREs go: a Network (client association or the caller's, for C-GET). */
export interface StoreChannel {
  association: AssociationT;
  /** Sends one C-STORE; resolves with the response, rejects when the association is lost. */
  send(request: CStoreRequestT): Promise<ResponseT>;
}

interface NetworkLike {
  sendRequests(r: CStoreRequestT): void;
}

/** A channel over a dcmjs-dimse Network; `lost` rejects everything outstanding once it settles. */
export function networkChannel(network: NetworkLike, association: AssociationT, lost: Promise<unknown>): StoreChannel {
  let gone: Error | undefined;
  const waiting = new Set<(e: Error) => void>();
  void lost.then(
    () => fail(new Error('association closed')),
    (e: unknown) => fail(e instanceof Error ? e : new Error(String(e))),
  );
  function fail(e: Error) {
    gone ??= e;
    for (const w of waiting) w(gone);
    waiting.clear();
  }
  return {
    association,
    send(request) {
      if (gone) return Promise.reject(gone);
      return new Promise<ResponseT>((resolve, reject) => {
        const onLost = (e: Error) => reject(e);
        waiting.add(onLost);
        request.on('response', (rsp: ResponseT) => {
          waiting.delete(onLost);
          resolve(rsp);
        });
        network.sendRequests(request);
      });
    },
  };
}

export interface RunHooks {
  /** After each sub-operation (for pending C-MOVE/C-GET responses). */
  progress?(report: StoreReport): void;
  /** Checked before each sub-operation: true stops after the current one. */
  cancelled?(): boolean;
}

type Prepared = { ok: true; request: CStoreRequestT } | { ok: false; status: number; comment: string };

/**
 * Sends the items on the channel one by one, reading the next instance while the current one
 * is on the wire. Every item ends as completed, warning or failed (or remaining on cancel).
 */
export async function runSubOperations(
  deps: Pick<ScuDeps, 'storage' | 'transcoder' | 'log'>,
  channel: StoreChannel,
  items: StoreItem[],
  hooks: RunHooks = {},
): Promise<StoreReport> {
  const report: StoreReport = { completed: 0, warning: 0, failed: 0, results: [], remaining: items.length, cancelled: false };
  const accepted = acceptedSyntaxes(channel.association);
  let lost: Error | undefined;

  const prepare = async (item: StoreItem): Promise<Prepared> => {
    const target = chooseSyntax(item.transfer_syntax_uid, accepted.get(item.sop_class_uid) ?? []);
    if (!target) {
      return {
        ok: false,
        status: DimseStatus.SopClassNotSupported,
        comment: `no accepted presentation context for ${item.sop_class_uid} in a usable syntax`,
      };
    }
    try {
      const load = () => verifiedReadAll(deps.storage, item.storage_key, item.sha256);
      const bytes =
        target === item.transfer_syntax_uid
          ? await load()
          : await deps.transcoder.cached(
              { sopInstanceUid: item.sop_instance_uid, sizeBytes: item.size_bytes },
              item.transfer_syntax_uid,
              target,
              load,
            );
      const { offset, transferSyntaxUid } = splitPart10(bytes);
      if (transferSyntaxUid !== target) throw new Error(`instance is ${transferSyntaxUid}, expected ${target}`);
      const ds = new EncodedDataset(bytes.subarray(offset), target, item.sop_class_uid, item.sop_instance_uid);
      return { ok: true, request: new CStoreRequest(ds) };
    } catch (err) {
      // A damaged blob is the node's failure, never sent as the instance; the comment (ErrorComment
      // is 64 characters) says so rather than the start of a storage key.
      if (err instanceof IntegrityError) {
        return { ok: false, status: DimseStatus.ProcessingFailure, comment: 'stored object failed its SHA-256 check (damaged at rest)' };
      }
      return { ok: false, status: DimseStatus.CannotUnderstand, comment: errorMessage(err) };
    }
  };

  let next: Promise<Prepared> | undefined = items[0] ? prepare(items[0]) : undefined;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (hooks.cancelled?.()) {
      report.cancelled = true;
      break;
    }
    const prepared = await next!;
    next = items[i + 1] && !lost ? prepare(items[i + 1]!) : undefined;
    let result: SubOperationResult;
    if (lost) {
      result = { sopInstanceUid: item.sop_instance_uid, outcome: 'failed', status: DimseStatus.OutOfResources, comment: lost.message };
    } else if (!prepared.ok) {
      result = { sopInstanceUid: item.sop_instance_uid, outcome: 'failed', status: prepared.status, comment: prepared.comment };
    } else {
      try {
        const rsp = await channel.send(prepared.request);
        const status = rsp.getStatus();
        result = { sopInstanceUid: item.sop_instance_uid, outcome: outcomeOf(status), status, comment: rsp.getErrorComment() || undefined };
      } catch (err) {
        lost = err instanceof Error ? err : new Error(String(err));
        result = { sopInstanceUid: item.sop_instance_uid, outcome: 'failed', status: DimseStatus.OutOfResources, comment: lost.message };
      }
    }
    report.results.push(result);
    report[result.outcome]++;
    report.remaining--;
    if (result.outcome === 'failed') {
      deps.log.debug({ sop: result.sopInstanceUid, status: result.status, reason: result.comment }, 'C-STORE sub-operation failed');
    }
    hooks.progress?.(report);
  }
  // A read-ahead left over (cancel) must not reject unobserved.
  void next?.catch(() => undefined);
  return report;
}

export interface AssociationHandle {
  channel: StoreChannel;
  release(): Promise<void>;
}

/**
 * Opens an association to a remote node proposing, for each SOP class, Explicit/Implicit VR
 * Little Endian and, in their own contexts, each stored syntax that is not one of those (so the
 * peer can take the stored one without preferring it over uncompressed in a single context).
 */
export function openAssociation(
  deps: ScuDeps,
  node: Pick<RemoteNode, 'aeTitle' | 'host' | 'port' | 'tls'>,
  contexts: Map<string, Set<string>>,
): Promise<AssociationHandle> {
  const client: ClientT = new Client();
  // dcmjs-dimse needs one request to send the association; a C-ECHO checks the peer as well.
  client.addRequest(new CEchoRequest());
  let pcId = 1;
  const add = (sop: string, syntaxes: string[]) => {
    if (pcId > 253) return; // 127 presentation contexts at most (odd IDs 1-253, PS3.8 9.3.2.2)
    const pc = new PresentationContext(pcId, sop, syntaxes[0]);
    for (const ts of syntaxes.slice(1)) pc.addTransferSyntaxUid(ts);
    client.addAdditionalPresentationContext(pc, true);
    pcId += 2;
  };
  pcId += 2; // the C-ECHO's context
  for (const sop of contexts.keys()) add(sop, [TS.ExplicitVRLittleEndian, TS.ImplicitVRLittleEndian]);
  for (const [sop, syntaxes] of contexts) {
    for (const ts of syntaxes) if (ts !== TS.ExplicitVRLittleEndian && ts !== TS.ImplicitVRLittleEndian) add(sop, [ts]);
  }
  const timeout = deps.timeoutMs ?? 60_000;

  return new Promise<AssociationHandle>((resolve, reject) => {
    let settled = false;
    let markClosed: (e?: Error) => void = () => undefined;
    const closed = new Promise<void>((res, rej) => {
      markClosed = (e) => (e ? rej(e) : res());
    });
    closed.catch(() => undefined);
    const failOpen = (e: Error) => {
      if (settled) return;
      settled = true;
      reject(e);
    };
    client.on('associationRejected', (r: { result: number; source: number; reason: number }) =>
      failOpen(new Error(`association rejected by ${node.aeTitle} (result ${r.result}, source ${r.source}, reason ${r.reason})`)),
    );
    client.on('networkError', (e: Error) => {
      failOpen(new Error(`${node.host}:${node.port}: ${e.message}`));
      markClosed(e);
    });
    client.on('closed', () => {
      failOpen(new Error(`${node.host}:${node.port}: connection closed`));
      markClosed();
    });
    let association: AssociationT | undefined;
    client.on('associationAccepted', (a: AssociationT) => {
      association = a;
    });
    try {
      client.send(node.host, node.port, deps.aeTitle, node.aeTitle, sendOptions(deps, node, timeout));
    } catch (err) {
      failOpen(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    const network = (
      client as unknown as { network: NetworkLike & NodeJS.EventEmitter & { sendAssociationReleaseRequest(): void; socket: Socket } }
    ).network;
    // One C-STORE at a time, each waiting for its response: Nagle would hold back the last PDU.
    network.socket.setNoDelay(true);
    // The client releases as soon as its request queue is empty; here the queue is fed one
    // instance at a time, so the release is ours to send.
    network.removeAllListeners('done');
    network.once('done', () => {
      if (settled || !association) return;
      settled = true;
      resolve({
        channel: networkChannel(network, association, closed),
        release: async () => {
          // A peer that never answers the release is cut off.
          const timer = setTimeout(() => {
            network.socket.destroy();
            markClosed();
          }, 10_000);
          try {
            network.sendAssociationReleaseRequest();
            await closed.catch(() => undefined);
          } finally {
            clearTimeout(timer);
          }
        },
      });
    });
  });
}

/**
 * C-STORE SCU: sends the items to the node on one association. Never throws for the peer's
 * sake: an unreachable node or a rejected association fails every item.
 */
export async function storeToNode(
  deps: ScuDeps,
  node: Pick<RemoteNode, 'aeTitle' | 'host' | 'port' | 'tls'>,
  items: StoreItem[],
  hooks: RunHooks = {},
): Promise<StoreReport> {
  if (items.length === 0) return { completed: 0, warning: 0, failed: 0, results: [], remaining: 0, cancelled: false };
  const contexts = new Map<string, Set<string>>();
  for (const it of items) {
    const set = contexts.get(it.sop_class_uid) ?? new Set<string>();
    set.add(it.transfer_syntax_uid);
    contexts.set(it.sop_class_uid, set);
  }
  let handle: AssociationHandle;
  try {
    handle = await openAssociation(deps, node, contexts);
  } catch (err) {
    const comment = errorMessage(err);
    deps.log.warn({ node: node.aeTitle, reason: comment }, 'C-STORE SCU: association failed');
    const results = items.map((it) => ({
      sopInstanceUid: it.sop_instance_uid,
      outcome: 'failed' as const,
      status: DimseStatus.OutOfResources,
      comment,
    }));
    const report: StoreReport = { completed: 0, warning: 0, failed: items.length, results, remaining: 0, cancelled: false };
    hooks.progress?.(report);
    return report;
  }
  try {
    return await runSubOperations(deps, handle.channel, items, hooks);
  } finally {
    await handle.release();
  }
}

export interface EchoResult {
  ok: boolean;
  status?: number;
  ms: number;
  error?: string;
}

/** C-ECHO SCU (PS3.4 A.4): verification of a remote node. */
export function echoNode(
  deps: Pick<ScuDeps, 'aeTitle' | 'tls' | 'timeoutMs'>,
  node: Pick<RemoteNode, 'aeTitle' | 'host' | 'port' | 'tls'>,
): Promise<EchoResult> {
  const started = performance.now();
  const ms = () => Math.round((performance.now() - started) * 10) / 10;
  return new Promise<EchoResult>((resolve) => {
    let done = false;
    const finish = (r: Omit<EchoResult, 'ms'>) => {
      if (done) return;
      done = true;
      resolve({ ...r, ms: ms() });
    };
    const client = new Client();
    const request = new CEchoRequest();
    let status: number | undefined;
    request.on('response', (rsp: ResponseT) => {
      status = rsp.getStatus();
    });
    client.addRequest(request);
    client.on('associationRejected', (r: { result: number; source: number; reason: number }) =>
      finish({ ok: false, error: `association rejected (result ${r.result}, source ${r.source}, reason ${r.reason})` }),
    );
    client.on('networkError', (e: Error) => finish({ ok: false, status, error: e.message }));
    client.on('closed', () =>
      finish(status === undefined ? { ok: false, error: 'no C-ECHO response (Verification not accepted?)' } : { ok: status === 0, status }),
    );
    const timeout = deps.timeoutMs ?? 15_000;
    try {
      client.send(node.host, node.port, deps.aeTitle, node.aeTitle, sendOptions(deps, node, timeout));
    } catch (err) {
      finish({ ok: false, error: errorMessage(err) });
    }
  });
}

/** The SCU's dependencies from the node's core parts and configuration. */
export function scuDeps(core: {
  storage: BlobStorage;
  transcoder: Transcoder;
  log: Logger;
  config: { dicom: { aeTitle: string; tls: TlsFiles } };
}): ScuDeps {
  return {
    storage: core.storage,
    transcoder: core.transcoder,
    log: core.log,
    aeTitle: core.config.dicom.aeTitle,
    tls: core.config.dicom.tls,
  };
}
