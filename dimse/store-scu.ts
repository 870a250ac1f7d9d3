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
import { errorMessage, StorageError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { RemoteNode } from '../src/catalog/remote-nodes.js';
import type { AssociationT } from './services.js';
import { readResponsePdu, storeRequestCommandSet, writeMessage } from './pdata.js';

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

const { Client } = dimse;
const { CEchoRequest } = dimse.requests;
const { PresentationContext } = dimse.association;
const ACCEPT = dimse.constants.PresentationContextResult.Accept;

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
  /** Associations a C-MOVE sends its sub-operations on at once (DICOM_MOVE_ASSOCIATIONS). */
  moveAssociations?: number;
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

/** A C-STORE sub-operation ready for the wire: the data set's bytes in the syntax it goes out in. */
export interface OutgoingStore {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  dataset: Buffer;
}

/** The peer's C-STORE response. */
export interface StoreAnswer {
  status: number;
  comment?: string;
}

/** Where sub-operation C-STOREs go: a Network (client association or the caller's, for C-GET). */
export interface StoreChannel {
  association: AssociationT;
  /** Sends one C-STORE; resolves with the response, rejects when the association is lost. */
  send(message: OutgoingStore): Promise<StoreAnswer>;
}

/** What the node uses of a dcmjs-dimse Network (a Client's, or the Scp's for C-GET) to send on it directly. */
export interface NetworkLike {
  socket: Socket;
  _getNextMessageId(): number;
  /** dcmjs-dimse hands every received PDU to this method (looked up at each call, so it can be wrapped). */
  _processPdu(pdu: Buffer): Promise<void>;
  /** Requests awaiting a response: dcmjs-dimse hands a response it reads itself to the one whose Message ID it answers. */
  pending: PendingRequest[];
}

interface PendingRequest {
  getMessageId(): number;
  raiseResponseEvent(response: ResponseT): void;
  raiseDoneEvent(): void;
}

/** CommandField of a C-STORE-RSP (PS3.7 E.1). */
const C_STORE_RSP = 0x8001;

/** C-STORE-RSPs awaited on a network, by Message ID. */
const awaited = new WeakMap<NetworkLike, Map<number, (answer: StoreAnswer) => void>>();

/**
 * The C-STORE responses the node waits for are read from the PDU by the node (dimse/pdata.ts):
 * dcmjs-dimse would parse each command set through dcmjs (a dictionary copy, ~1 ms) and then
 * look the request up in a list that only grows. Every other PDU goes to dcmjs-dimse as before.
 */
function awaitedResponses(network: NetworkLike): Map<number, (answer: StoreAnswer) => void> {
  let map = awaited.get(network);
  if (map) return map;
  const waiting = new Map<number, (answer: StoreAnswer) => void>();
  map = waiting;
  awaited.set(network, waiting);
  const process = network._processPdu.bind(network);
  network._processPdu = (pdu: Buffer) => {
    const rsp = waiting.size > 0 ? readResponsePdu(pdu) : undefined;
    const answer = rsp?.commandField === C_STORE_RSP ? waiting.get(rsp.messageIdBeingRespondedTo) : undefined;
    if (!rsp || !answer) return process(pdu);
    waiting.delete(rsp.messageIdBeingRespondedTo);
    answer({ status: rsp.status, comment: rsp.errorComment });
    return Promise.resolve();
  };
  return waiting;
}

/** The accepted presentation context for a SOP class in a transfer syntax. */
function contextIdFor(association: AssociationT, sopClassUid: string, ts: string): number | undefined {
  for (const { id } of association.getPresentationContexts()) {
    const pc = association.getPresentationContext(id);
    if (pc.getResult() === ACCEPT && pc.getAbstractSyntaxUid() === sopClassUid && pc.getAcceptedTransferSyntaxUid() === ts) return id;
  }
  return undefined;
}

/**
 * A channel over a dcmjs-dimse Network: the C-STORE-RQ is written by the node (dimse/pdata.ts,
 * one gathered socket write, the data set's bytes as they are) and its response read by the node
 * too. `lost` rejects everything outstanding once it settles.
 */
export function networkChannel(
  network: NetworkLike,
  association: AssociationT,
  lost: Promise<unknown>,
  moveOriginator?: { aeTitle: string; messageId: number },
): StoreChannel {
  let gone: Error | undefined;
  const waiting = new Set<(e: Error) => void>();
  const responses = awaitedResponses(network);
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
    send(message) {
      if (gone) return Promise.reject(gone);
      const contextId = contextIdFor(association, message.sopClassUid, message.transferSyntaxUid);
      if (contextId === undefined)
        return Promise.reject(new Error(`no accepted context for ${message.sopClassUid} in ${message.transferSyntaxUid}`));
      return new Promise<StoreAnswer>((resolve, reject) => {
        const onLost = (e: Error) => reject(e);
        waiting.add(onLost);
        const messageId = network._getNextMessageId();
        const answered = (answer: StoreAnswer) => {
          waiting.delete(onLost);
          responses.delete(messageId);
          resolve(answer);
        };
        responses.set(messageId, answered);
        // A response the node does not read itself (its command set split over PDUs, say) is read
        // by dcmjs-dimse, which looks for the request here.
        network.pending.push({
          getMessageId: () => messageId,
          raiseResponseEvent: (rsp) => answered({ status: rsp.getStatus(), comment: rsp.getErrorComment() || undefined }),
          raiseDoneEvent: () => undefined,
        });
        const command = storeRequestCommandSet({
          sopClassUid: message.sopClassUid,
          sopInstanceUid: message.sopInstanceUid,
          messageId,
          moveOriginator,
        });
        writeMessage(network.socket, contextId, association.getMaxPduLength(), command, message.dataset);
      });
    },
  };
}

export interface RunHooks {
  /** After each sub-operation (for pending C-MOVE/C-GET responses). */
  progress?(report: StoreReport): void;
  /** Checked before each sub-operation: true stops after the ones on the wire. */
  cancelled?(): boolean;
}

type Prepared = { ok: true; message: OutgoingStore } | { ok: false; status: number; comment: string };

/**
 * Sends the items on the channels, each channel taking the next item from one queue as soon as
 * its previous one is answered (one outstanding C-STORE per association: the node does not
 * negotiate an asynchronous operations window) and reading its next instance while the current
 * one is on the wire. Channels still opening take part once they are open; one that fails to open
 * takes nothing. Every item ends as completed, warning or failed (or remaining on cancel); items
 * left when every channel is lost fail with the reason.
 */
export async function runSubOperations(
  deps: Pick<ScuDeps, 'storage' | 'transcoder' | 'log'>,
  channels: StoreChannel | Array<Promise<StoreChannel>>,
  items: StoreItem[],
  hooks: RunHooks = {},
): Promise<StoreReport> {
  const report: StoreReport = { completed: 0, warning: 0, failed: 0, results: [], remaining: items.length, cancelled: false };
  const opening = Array.isArray(channels) ? channels : [Promise.resolve(channels)];
  // The queue: items in order, and read-ahead items handed back by an association that was lost.
  let at = 0;
  const returned: StoreItem[] = [];
  let lost: Error | undefined;
  const stopped = () => {
    if (!report.cancelled && hooks.cancelled?.()) report.cancelled = true;
    return report.cancelled;
  };
  const take = (): StoreItem | undefined => (report.cancelled ? undefined : (returned.pop() ?? items[at++]));
  const record = (result: SubOperationResult) => {
    report.results.push(result);
    report[result.outcome]++;
    report.remaining--;
    if (result.outcome === 'failed') {
      deps.log.debug({ sop: result.sopInstanceUid, status: result.status, reason: result.comment }, 'C-STORE sub-operation failed');
    }
    hooks.progress?.(report);
  };

  const worker = async (channel: StoreChannel) => {
    const accepted = acceptedSyntaxes(channel.association);
    let item = stopped() ? undefined : take();
    let next: Promise<Prepared> | undefined = item ? prepare(deps, accepted, item) : undefined;
    while (item) {
      const prepared = await next!;
      // C-CANCEL (or the caller gone) stops before the next sub-operation; what is not sent stays remaining.
      if (stopped()) break;
      const current = item;
      item = take();
      next = item ? prepare(deps, accepted, item) : undefined;
      if (!prepared.ok) {
        record({ sopInstanceUid: current.sop_instance_uid, outcome: 'failed', status: prepared.status, comment: prepared.comment });
        continue;
      }
      try {
        const rsp = await channel.send(prepared.message);
        record({ sopInstanceUid: current.sop_instance_uid, outcome: outcomeOf(rsp.status), status: rsp.status, comment: rsp.comment });
      } catch (err) {
        lost = err instanceof Error ? err : new Error(String(err));
        record({ sopInstanceUid: current.sop_instance_uid, outcome: 'failed', status: DimseStatus.OutOfResources, comment: lost.message });
        // This association is gone: the item it read ahead goes back to the others.
        if (item) returned.push(item);
        item = undefined;
      }
    }
    // A read-ahead left over (cancel, loss) must not reject unobserved.
    void next?.catch(() => undefined);
  };
  // Done when no association is sending and nothing is left to send (or none can open any more).
  // An association still opening is not waited for once the queue is empty: a peer taking one
  // association at a time opens it only after the others are released.
  let active = 0;
  let stillOpening = opening.length;
  await new Promise<void>((resolve) => {
    const check = () => {
      const nothingLeft = report.cancelled || (returned.length === 0 && at >= items.length);
      if (active === 0 && (nothingLeft || stillOpening === 0)) resolve();
    };
    for (const o of opening) {
      o.then(
        (channel) => {
          stillOpening--;
          active++;
          void worker(channel).finally(() => {
            active--;
            check();
          });
        },
        () => {
          stillOpening--;
          check();
        },
      );
    }
  });
  // Every association was lost (or none opened): what nobody sent fails, unless it was cancelled.
  for (let item = take(); item; item = take()) {
    const comment = lost?.message ?? 'no association';
    record({ sopInstanceUid: item.sop_instance_uid, outcome: 'failed', status: DimseStatus.OutOfResources, comment });
  }
  return report;
}

/** Reads (and transcodes if it must) one instance for the wire. */
async function prepare(deps: Pick<ScuDeps, 'storage' | 'transcoder'>, accepted: Map<string, string[]>, item: StoreItem): Promise<Prepared> {
  const target = chooseSyntax(item.transfer_syntax_uid, accepted.get(item.sop_class_uid) ?? []);
  if (!target) {
    return {
      ok: false,
      status: DimseStatus.SopClassNotSupported,
      comment: `no accepted presentation context for ${item.sop_class_uid} in a usable syntax`,
    };
  }
  try {
    const load = () => verifiedReadAll(deps.storage, item.storage_key, item.sha256, undefined, item.size_bytes);
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
    const message = {
      sopClassUid: item.sop_class_uid,
      sopInstanceUid: item.sop_instance_uid,
      transferSyntaxUid: target,
      dataset: bytes.subarray(offset),
    };
    return { ok: true, message };
  } catch (err) {
    // A damaged blob is the node's failure, never sent as the instance; the comment (ErrorComment
    // is 64 characters) says so rather than the start of a storage key.
    if (err instanceof IntegrityError) {
      return { ok: false, status: DimseStatus.ProcessingFailure, comment: 'stored object failed its SHA-256 check (damaged at rest)' };
    }
    // A blob gone from the storage is the node's failure too (0x0110), not the peer's data (0xC000).
    if (err instanceof StorageError && err.kind === 'not-found') {
      return { ok: false, status: DimseStatus.ProcessingFailure, comment: 'stored object is missing from the storage' };
    }
    return { ok: false, status: DimseStatus.CannotUnderstand, comment: errorMessage(err) };
  }
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
  moveOriginator?: { aeTitle: string; messageId: number },
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
        channel: networkChannel(network, association, closed, moveOriginator),
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

export interface StoreOptions {
  /**
   * Associations to send on at once (C-MOVE: DICOM_MOVE_ASSOCIATIONS). The first is opened
   * before anything is sent; the others join as the peer accepts them (one that refuses them,
   * or takes one association at a time, gets everything on the first).
   */
  associations?: number;
  /** C-MOVE sub-operations name the C-MOVE they serve (PS3.7 9.3.1.1). */
  moveOriginator?: { aeTitle: string; messageId: number };
}

/**
 * C-STORE SCU: sends the items to the node (on one association unless `opts.associations` says
 * more). Never throws for the peer's sake: an unreachable node or a rejected association fails
 * every item.
 */
export async function storeToNode(
  deps: ScuDeps,
  node: Pick<RemoteNode, 'aeTitle' | 'host' | 'port' | 'tls'>,
  items: StoreItem[],
  hooks: RunHooks = {},
  opts: StoreOptions = {},
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
    handle = await openAssociation(deps, node, contexts, opts.moveOriginator);
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
  const extras: Array<Promise<AssociationHandle>> = [];
  for (let i = 1; i < Math.min(opts.associations ?? 1, items.length); i++) {
    const extra = openAssociation(deps, node, contexts, opts.moveOriginator);
    extra.catch((err: unknown) =>
      deps.log.debug({ node: node.aeTitle, reason: errorMessage(err) }, 'C-STORE SCU: extra association failed'),
    );
    extras.push(extra);
  }
  try {
    return await runSubOperations(deps, [Promise.resolve(handle.channel), ...extras.map((e) => e.then((h) => h.channel))], items, hooks);
  } finally {
    // Extras still opening are released once open (they send nothing more).
    for (const extra of extras)
      extra.then(
        (h) => void h.release(),
        () => undefined,
      );
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
  config: { dicom: { aeTitle: string; tls: TlsFiles; moveAssociations: number } };
}): ScuDeps {
  return {
    moveAssociations: core.config.dicom.moveAssociations,
    storage: core.storage,
    transcoder: core.transcoder,
    log: core.log,
    aeTitle: core.config.dicom.aeTitle,
    tls: core.config.dicom.tls,
  };
}
