import { EventEmitter } from 'node:events';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Db } from '../db/connection.js';
import type { BlobStorage } from '../../storage/types.js';
import { instanceKey } from '../../storage/keys.js';
import { sha256File } from '../../storage/integrity.js';
import { isValidUid } from '../dicom/uids.js';
import { findInstance, type InstanceRecord } from '../catalog/catalog.js';
import { IndexWriter, type IndexHook } from '../catalog/index-writer.js';
import type { DicomHeader } from '../dicom/header-types.js';
import type { ParsePool } from '../dicom/parse-pool.js';
import { pixelGeometryProblem } from '../dicom/pixel-geometry.js';
import { isStandardStorageSopClass, isStorableTransferSyntax } from '../dicom/uids.js';
import { RadiantError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { IngestJournal } from './ingest-journal.js';

/**
 * The one ingest path. C-STORE, STOW-RS, REST upload and `radiant import` all end here:
 * a file on local disk → header parsed (in a worker, without pixel data) → validated → blob
 * stored durably → indexed in one transaction → `instance-stored` emitted. The caller may
 * acknowledge the instance only when the returned promise resolves.
 */

export type IngestSourceKind = 'dimse' | 'import' | 'stow' | 'upload' | 'ai';

export interface IngestContext {
  source: IngestSourceKind;
  callingAeTitle?: string;
  /** What the transport said it was sending (C-STORE's Affected SOP Class/Instance UID). */
  expected?: { sopClassUid?: string; sopInstanceUid?: string; studyInstanceUid?: string };
  /** Why forwarding rules must not send this instance on their own (e.g. the result of an unvalidated model). */
  holdForwarding?: string;
}

export interface IngestResult {
  outcome: 'stored' | 'replaced' | 'ignored';
  sopInstanceUid: string;
  sopClassUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  transferSyntaxUid: string;
  sizeBytes: number;
  storageKey: string;
  warnings: string[];
  /** Patient ID (0010,0020) of the data set ('' when absent), for audit rows. */
  patientId: string;
}

export interface InstanceStoredEvent extends IngestResult {
  source: IngestSourceKind;
  callingAeTitle?: string;
  modality?: string;
  at: Date;
}

export interface IngestOptions {
  tempDir: string;
  duplicatePolicy: 'overwrite' | 'ignore' | 'reject';
  maxInstanceBytes: number;
  acceptUnknownSopClasses: boolean;
  /** Marks blobs stored but not yet indexed, for the sweep after a crash (ingest-journal.ts). */
  journal?: IngestJournal;
  /** Ceiling on Rows × Columns (MAX_FRAME_PIXELS). */
  maxFramePixels: number;
}

export interface IngestorEvents {
  'instance-stored': [InstanceStoredEvent];
}

interface ValidatedHeader extends DicomHeader {
  sopClassUid: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
}

const tagNames: Record<'sopClassUid' | 'sopInstanceUid' | 'studyInstanceUid' | 'seriesInstanceUid', string> = {
  sopClassUid: '(0008,0016) SOP Class UID',
  sopInstanceUid: '(0008,0018) SOP Instance UID',
  studyInstanceUid: '(0020,000D) Study Instance UID',
  seriesInstanceUid: '(0020,000E) Series Instance UID',
};

const metaUidNames: Record<'mediaStorageSopClassUid' | 'mediaStorageSopInstanceUid', string> = {
  mediaStorageSopClassUid: 'meta (0002,0002) Media Storage SOP Class UID',
  mediaStorageSopInstanceUid: 'meta (0002,0003) Media Storage SOP Instance UID',
};

/** fsync of a file's contents. */
async function syncFile(filePath: string): Promise<void> {
  const fh = await fsp.open(filePath, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The refusal of a UID that is not one, naming the element and (shortened) the value. */
function invalidUid(name: string, value: string): RadiantError {
  const shown = value.length > 70 ? `${value.slice(0, 70)}...` : value;
  return new RadiantError('invalid-input', `invalid ${name} ${JSON.stringify(shown)}: not a UID (PS3.5 9.1)`);
}

export class Ingestor extends EventEmitter<IngestorEvents> {
  private readonly index: IndexWriter;

  constructor(
    private readonly db: Db,
    private readonly storage: BlobStorage,
    private readonly parser: ParsePool,
    private readonly opts: IngestOptions,
    private readonly log: Logger,
  ) {
    super();
    fs.mkdirSync(opts.tempDir, { recursive: true });
    this.index = new IndexWriter(db);
  }

  /** A fresh path in the temp area, for transports that write the incoming file themselves. */
  /** Work that commits in the same transaction as each instance's index rows. */
  addIndexHook(hook: IndexHook): void {
    this.index.addHook(hook);
  }

  tempPath(): string {
    return path.join(this.opts.tempDir, `${randomUUID()}.part`);
  }

  /** Remove a temp file a transport wrote but could not hand over (best effort). */
  async discardTemp(filePath: string): Promise<void> {
    await fsp.rm(filePath, { force: true }).catch(() => undefined);
  }

  /** Stream a body to a temp file (bounded by MAX_INSTANCE_BYTES), then ingest it. */
  async ingestStream(body: Readable, ctx: IngestContext): Promise<IngestResult> {
    const tmp = this.tempPath();
    let seen = 0;
    const limit = this.opts.maxInstanceBytes;
    // The digest is taken of the bytes as they are written, so the file is not read again for it.
    const hash = createHash('sha256');
    const guard = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        seen += chunk.length;
        if (seen > limit) return cb(new RadiantError('too-large', `instance larger than ${limit} bytes`));
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    const out = fs.createWriteStream(tmp, { flags: 'wx' });
    try {
      await pipeline(body, guard, out);
    } catch (err) {
      // The pipeline can fail before the file is even opened; remove it only once it is closed,
      // or the late open would leave an empty temp file behind.
      if (!out.closed) await new Promise((resolve) => out.once('close', resolve));
      await fsp.rm(tmp, { force: true });
      if (err instanceof RadiantError) throw err;
      throw new RadiantError('out-of-resources', `cannot receive instance: ${errorMessage(err)}`, { cause: err });
    }
    return this.ingestFile(tmp, true, ctx, hash.digest('hex'));
  }

  /**
   * Ingest a Part 10 file already on local disk. `owned` files (temp files the node wrote) are
   * moved into storage or deleted; others (an import source) are copied and left alone.
   * `sha256` is the file's digest when the caller took it while writing the file (hex).
   */
  async ingestFile(filePath: string, owned: boolean, ctx: IngestContext, sha256?: string): Promise<IngestResult> {
    try {
      return await this.ingestOwnedOrNot(filePath, owned, ctx, sha256);
    } finally {
      if (owned) await fsp.rm(filePath, { force: true }).catch(() => undefined);
    }
  }

  private async ingestOwnedOrNot(filePath: string, owned: boolean, ctx: IngestContext, knownSha256?: string): Promise<IngestResult> {
    const stat = await fsp.stat(filePath);
    if (stat.size > this.opts.maxInstanceBytes) {
      throw new RadiantError('too-large', `instance larger than ${this.opts.maxInstanceBytes} bytes`);
    }
    // A spool file goes into local storage by rename, which needs its bytes durable first: that
    // fsync runs while the header is parsed rather than after.
    const synced = owned && this.storage.kind === 'local' ? syncFile(filePath) : undefined;
    synced?.catch(() => undefined);
    // Without a digest taken on the way in, it is read beside the header parse (the file is in
    // the page cache for both).
    const [parsed, sha256] = await Promise.all([this.parser.parse(filePath), knownSha256 ?? sha256File(filePath)]);
    if (!parsed.ok) throw new RadiantError(parsed.kind, parsed.error);
    const header = this.validate(parsed.header, ctx);

    const storageKey = instanceKey(header.studyInstanceUid, header.seriesInstanceUid, header.sopInstanceUid);
    // With the default overwrite policy the index transaction itself finds what is replaced;
    // the extra look-up is only needed to refuse or skip a duplicate before storing anything.
    const existing =
      this.opts.duplicatePolicy === 'overwrite' ? undefined : await this.withDb(() => findInstance(this.db, header.sopInstanceUid));
    const base = {
      sopInstanceUid: header.sopInstanceUid,
      sopClassUid: header.sopClassUid,
      studyInstanceUid: header.studyInstanceUid,
      seriesInstanceUid: header.seriesInstanceUid,
      transferSyntaxUid: header.transferSyntaxUid,
      sizeBytes: stat.size,
      storageKey,
      warnings: header.warnings,
      patientId: header.patientId ?? '',
    };
    if (existing && this.opts.duplicatePolicy === 'reject') {
      throw new RadiantError('duplicate', `SOP Instance ${header.sopInstanceUid} is already stored`);
    }
    if (existing && this.opts.duplicatePolicy === 'ignore') {
      this.log.debug({ sop: header.sopInstanceUid }, 'duplicate ignored');
      return { ...base, outcome: 'ignored', storageKey: existing.storage_key, sizeBytes: existing.size_bytes };
    }

    // The marker is written while the spool file's fsync finishes: both must be done before the
    // blob is stored, neither needs the other.
    const [marker, isSynced] = await Promise.all([
      this.opts.journal?.begin({ storageKey, sopInstanceUid: header.sopInstanceUid }),
      // A failed early fsync is not an answer: storage syncs (and reports) on its own then.
      synced
        ? synced.then(
            () => true,
            () => false,
          )
        : false,
    ]);
    try {
      return await this.storeAndIndex(header, filePath, owned, isSynced, ctx, base, sha256);
    } finally {
      // Not awaited: once the index has committed (or the blob is gone again) a marker left by a
      // crash only makes the next start's sweep find an indexed instance and drop the marker.
      if (marker)
        void this.opts.journal?.end(marker).catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'ingest marker not removed'));
    }
  }

  private async storeAndIndex(
    header: ValidatedHeader,
    filePath: string,
    owned: boolean,
    synced: boolean,
    ctx: IngestContext,
    base: Omit<IngestResult, 'outcome'>,
    sha256: string,
  ): Promise<IngestResult> {
    const { storageKey } = base;
    let sizeBytes: number;
    try {
      sizeBytes = await this.storage.putFile(storageKey, filePath, { move: owned, synced, contentType: 'application/dicom' });
    } catch (err) {
      // Keys come from validated UIDs, so whatever the store says, it is the store's problem:
      // out of resources, and the peer may retry later. The details go to the log, not the peer.
      this.log.error({ key: storageKey, err: errorMessage(err) }, 'blob store write failed');
      const code = (err as { cause?: { code?: string }; code?: string }).cause?.code ?? (err as { code?: string }).code;
      throw new RadiantError('out-of-resources', `storage unavailable${code ? ` (${code})` : ''}`, { cause: err });
    }

    const record = this.toRecord(header, storageKey, sizeBytes, ctx);
    record.instance.sha256 = sha256;
    let replacedKey: string | undefined;
    let replaced = false;
    try {
      const res = await this.withDb(() => this.index.write(record));
      replacedKey = res.replaced?.storageKey;
      replaced = res.replaced !== undefined;
    } catch (err) {
      // Never leave a blob nobody can find: a new instance that failed to index is removed
      // (unless the key already held an indexed instance, which must keep its blob).
      const indexed = await findInstance(this.db, header.sopInstanceUid).catch(() => undefined);
      if (!indexed) await this.storage.delete(storageKey).catch(() => undefined);
      throw err;
    }
    if (replacedKey && replacedKey !== storageKey) {
      await this.storage
        .delete(replacedKey)
        .catch((err: unknown) => this.log.warn({ key: replacedKey, err: errorMessage(err) }, 'could not delete replaced blob'));
    }

    const result: IngestResult = { ...base, sizeBytes, outcome: replaced ? 'replaced' : 'stored' };
    this.emit('instance-stored', {
      ...result,
      source: ctx.source,
      callingAeTitle: ctx.callingAeTitle,
      modality: header.modality,
      at: new Date(),
    });
    return result;
  }

  private validate(h: DicomHeader, ctx: IngestContext): ValidatedHeader {
    if (!h.transferSyntaxUid) throw new RadiantError('invalid-input', 'file meta has no (0002,0010) Transfer Syntax UID');
    if (!isValidUid(h.transferSyntaxUid)) throw invalidUid('meta (0002,0010) Transfer Syntax UID', h.transferSyntaxUid);
    if (!isStorableTransferSyntax(h.transferSyntaxUid)) {
      throw new RadiantError('unsupported', `transfer syntax ${h.transferSyntaxUid} is not supported`, {
        reason: 'transfer-syntax',
      });
    }
    for (const key of Object.keys(tagNames) as Array<keyof typeof tagNames>) {
      const v = h[key];
      if (!v) throw new RadiantError('invalid-input', `missing ${tagNames[key]}`);
      if (!isValidUid(v)) throw invalidUid(tagNames[key], v);
    }
    for (const key of Object.keys(metaUidNames) as Array<keyof typeof metaUidNames>) {
      const v = h[key];
      if (v !== undefined && !isValidUid(v)) throw invalidUid(metaUidNames[key], v);
    }
    const v = h as ValidatedHeader;
    // The transport's own claims first: over DIMSE the node wrote the file meta from them, so a
    // meta mismatch would blame the peer for bytes it never sent.
    const exp = ctx.expected;
    if (exp?.sopInstanceUid && exp.sopInstanceUid !== v.sopInstanceUid) {
      throw new RadiantError('mismatch', 'Affected SOP Instance UID differs from the data set');
    }
    if (exp?.sopClassUid && exp.sopClassUid !== v.sopClassUid) {
      throw new RadiantError('mismatch', 'Affected SOP Class UID differs from the data set');
    }
    if (h.mediaStorageSopInstanceUid && h.mediaStorageSopInstanceUid !== v.sopInstanceUid) {
      throw new RadiantError('mismatch', 'meta (0002,0003) differs from (0008,0018) SOP Instance UID');
    }
    if (h.mediaStorageSopClassUid && h.mediaStorageSopClassUid !== v.sopClassUid) {
      throw new RadiantError('mismatch', 'meta (0002,0002) differs from (0008,0016) SOP Class UID');
    }
    if (exp?.studyInstanceUid && exp.studyInstanceUid !== v.studyInstanceUid) {
      throw new RadiantError('mismatch', 'instance belongs to another study', { reason: 'study-mismatch' });
    }
    if (!this.opts.acceptUnknownSopClasses && !isStandardStorageSopClass(v.sopClassUid)) {
      throw new RadiantError('unsupported', `SOP class ${v.sopClassUid} is not a storage SOP class`, {
        reason: 'sop-class',
      });
    }
    // A decoder trusts Rows × Columns × …: a claim the pixel data cannot back is refused here,
    // before it is stored for a viewer to choke on.
    const geometry = pixelGeometryProblem(h, h.pixelData, h.hasPixelData, this.opts.maxFramePixels);
    if (geometry) throw new RadiantError('invalid-input', geometry);
    if (h.pixelDataUnchecked) this.log.debug({ sop: v.sopInstanceUid, why: h.pixelDataUnchecked }, 'pixel data length not checked');
    return v;
  }

  private toRecord(h: ValidatedHeader, storageKey: string, sizeBytes: number, ctx: IngestContext): InstanceRecord {
    return {
      patient: {
        patientId: h.patientId ?? '',
        issuerOfPatientId: h.issuerOfPatientId ?? '',
        patientName: h.patientName,
        patientBirthDate: h.patientBirthDate,
        patientSex: h.patientSex,
      },
      study: {
        studyInstanceUid: h.studyInstanceUid,
        studyDate: h.studyDate,
        studyTime: h.studyTime,
        accessionNumber: h.accessionNumber,
        referringPhysicianName: h.referringPhysicianName,
        studyDescription: h.studyDescription,
        studyId: h.studyId,
        timezoneOffsetFromUtc: h.timezoneOffsetFromUtc,
      },
      series: {
        seriesInstanceUid: h.seriesInstanceUid,
        modality: h.modality,
        seriesNumber: h.seriesNumber,
        seriesDescription: h.seriesDescription,
        bodyPartExamined: h.bodyPartExamined,
        performedProcedureStepStartDate: h.performedProcedureStepStartDate,
        performedProcedureStepStartTime: h.performedProcedureStepStartTime,
      },
      sequences: h.sequences,
      instance: {
        sopInstanceUid: h.sopInstanceUid,
        sopClassUid: h.sopClassUid,
        instanceNumber: h.instanceNumber,
        rows: h.rows,
        columns: h.columns,
        numberOfFrames: h.numberOfFrames,
        bitsAllocated: h.bitsAllocated,
        transferSyntaxUid: h.transferSyntaxUid,
        sizeBytes,
        storageKey,
        source: ctx.source,
        sourceAeTitle: ctx.callingAeTitle,
        ...(ctx.holdForwarding ? { holdForwarding: ctx.holdForwarding } : {}),
      },
    };
  }

  private async withDb<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RadiantError) throw err;
      this.log.error({ err: errorMessage(err) }, 'index write failed');
      throw new RadiantError('out-of-resources', 'index unavailable', { cause: err });
    }
  }
}
