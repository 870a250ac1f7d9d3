import dcmjs from 'dcmjs';
import type { Db } from '../src/db/connection.js';
import type { RouteDeps } from '../src/http/server.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext } from '../src/http/state.js';
import type { BlobStorage } from '../storage/types.js';
import { resolveInstances, resourcePath, type ResolvedInstance } from './resources.js';

/**
 * WADO-RS Retrieve Metadata (PS3.18 §10.4.1.1.2, Annex F.2): `…/metadata` of a study, series or
 * instance as `application/dicom+json`, an array with one data set per instance holding every
 * attribute of the stored header (File Meta group excluded, as PS3.18 wants the data set).
 *
 * - PN as {Alphabetic, Ideographic, Phonetic}; IS/DS (and the binary numeric VRs) as numbers;
 *   AT as "GGGGEEEE"; sequences nested; an empty value as {"vr": …} without Value; an empty
 *   component of a multi-valued attribute as null.
 * - OB/OW/OF/OD/OL/OV/UN values of at most 1 KiB inline (InlineBinary, base64); larger ones as a
 *   BulkDataURI `<instance URL>/bulkdata/<tag path>` (that route is not served yet).
 * - Pixel Data (7FE0,0010) has no value here: its BulkDataURI is the instance URL (as
 *   dcm4chee-arc does; PS3.18 lets Pixel Data be referenced through the instance / frames
 *   resources). Attributes after Pixel Data (rare trailing padding) are not read.
 * - Text is decoded per (0008,0005) and served as UTF-8, so (0008,0005) reads ISO_IR 192 (dcmjs
 *   rewrites it after decoding; DCMTK's dcm2json does the same).
 *
 * Headers are read through the storage back end (local, S3, Azure) as a prefix that grows until
 * the parse reaches Pixel Data, and parsed with dcmjs in the main thread. That is acceptable only
 * because every stored file was parsed and structure-checked in the header worker at ingest;
 * moving this into the parse pool is a TODO.
 *
 * Series metadata is built once and cached in `series_metadata` (migration 003), valid while the
 * series' num_instances and last_received_at are what it was built from; the study answer is the
 * concatenation of its series' cached arrays; the instance answer is parsed on demand.
 */

const PIXEL_DATA = '7FE00010';
const FIRST_READ = 64 * 1024;
/** A header (or a file without Pixel Data) larger than this is not served as metadata. */
const MAX_HEADER_READ = 64 * 1024 * 1024;
const INLINE_MAX = 1024;
const BUILD_CONCURRENCY = 4;

const BINARY = new Set(['OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN']);
const NUMERIC = new Set(['IS', 'DS', 'US', 'SS', 'UL', 'SL', 'FL', 'FD', 'UV', 'SV']);
const ENCAPSULATED_NOT = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2', '1.2.840.10008.1.2.1.99']);

interface DcmElement {
  vr?: string;
  Value?: unknown;
}
type DcmDict = Record<string, DcmElement | undefined>;

export interface JsonAttribute {
  vr: string;
  Value?: unknown[];
  InlineBinary?: string;
  BulkDataURI?: string;
}
export type JsonDataset = Record<string, JsonAttribute>;

interface ReadOptions {
  untilTag: string;
  includeUntilTagValue: boolean;
  ignoreErrors: boolean;
  noCopy: boolean;
}
const readFile = (buf: ArrayBuffer, opts: ReadOptions): { meta: DcmDict; dict: DcmDict } =>
  (dcmjs.data.DicomMessage.readFile as (b: ArrayBuffer, o: ReadOptions) => { meta: DcmDict; dict: DcmDict })(buf, opts);
dcmjs.log.setLevel('silent');

async function readPrefix(storage: BlobStorage, key: string, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const s = await storage.get(key, { start: 0, end: n - 1 });
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The data set up to Pixel Data of a stored instance. */
export async function readStoredHeader(storage: BlobStorage, inst: ResolvedInstance): Promise<DcmDict> {
  const size = inst.size_bytes;
  let want = Math.min(size, FIRST_READ);
  for (;;) {
    const buf = await readPrefix(storage, inst.storage_key, want);
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
    const complete = buf.length >= size;
    try {
      const parsed = readFile(ab, { untilTag: PIXEL_DATA, includeUntilTagValue: false, ignoreErrors: true, noCopy: false });
      // A prefix is trusted only when the parse reached Pixel Data (header.ts does the same).
      if (complete || PIXEL_DATA in parsed.dict) return parsed.dict;
    } catch (err) {
      if (complete) throw err;
    }
    if (want >= MAX_HEADER_READ) throw new Error(`header of ${inst.sop_instance_uid} larger than ${MAX_HEADER_READ} bytes`);
    want = Math.min(size, want * 4, MAX_HEADER_READ);
  }
}

function toBase64(v: unknown): Buffer | undefined {
  const parts = Array.isArray(v) ? v : [v];
  const bufs: Buffer[] = [];
  for (const p of parts) {
    if (p instanceof ArrayBuffer) bufs.push(Buffer.from(p));
    else if (ArrayBuffer.isView(p)) bufs.push(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    else if (p === null || p === undefined) continue;
    else return undefined;
  }
  return Buffer.concat(bufs);
}

function number(v: unknown): unknown {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  const n = Number(String(v).trim());
  // Not a number in the file: kept as written rather than invented.
  return Number.isFinite(n) && String(v).trim() !== '' ? n : String(v);
}

function personName(v: unknown): unknown {
  if (v === null || v === undefined || v === '') return null;
  const src: Record<string, unknown> =
    typeof v === 'object' ? (v as Record<string, unknown>) : (() => {
      const [Alphabetic, Ideographic, Phonetic] = String(v).split('=');
      return { Alphabetic, Ideographic, Phonetic };
    })();
  const out: Record<string, string> = {};
  for (const k of ['Alphabetic', 'Ideographic', 'Phonetic']) {
    const s = src[k];
    if (typeof s === 'string' && s !== '') out[k] = s;
  }
  return Object.keys(out).length ? out : null;
}

function attributeTag(v: unknown): unknown {
  if (typeof v === 'number') return (v >>> 0).toString(16).toUpperCase().padStart(8, '0');
  if (typeof v === 'string' && v !== '') return v.replace(/[(),\s]/g, '').toUpperCase();
  return null;
}

function valuesOf(e: DcmElement): unknown[] {
  const v = e.Value;
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/** Values with only nulls are no value at all. */
function withValues(vr: string, values: unknown[]): JsonAttribute {
  return values.some((x) => x !== null) ? { vr, Value: values } : { vr };
}

/**
 * dcmjs's parsed dictionary to PS3.18 F.2 DICOM JSON. `uri` is the instance URL (relative,
 * `/studies/…`) and `path` the tag path of the enclosing sequences, for BulkDataURIs.
 */
export function toDicomJsonDataset(dict: DcmDict, ctx: { uri: string; pixelVr: string }, path: string[] = []): JsonDataset {
  const out: JsonDataset = {};
  for (const tag of Object.keys(dict).sort()) {
    const e = dict[tag];
    if (!e || !/^[0-9A-F]{8}$/i.test(tag)) continue;
    const T = tag.toUpperCase();
    if (T.endsWith('0000') || T.startsWith('0002')) continue; // group lengths, File Meta
    if (T === PIXEL_DATA && path.length === 0) {
      out[T] = { vr: e.vr && BINARY.has(e.vr) ? e.vr : ctx.pixelVr, BulkDataURI: ctx.uri };
      continue;
    }
    const vr = e.vr ?? 'UN';
    if (vr === 'SQ') {
      const items = valuesOf(e).map((item, i) =>
        toDicomJsonDataset((item ?? {}) as DcmDict, ctx, [...path, T, String(i)]),
      );
      out[T] = items.length ? { vr, Value: items } : { vr };
    } else if (BINARY.has(vr)) {
      const buf = toBase64(e.Value);
      if (!buf || buf.length === 0) out[T] = { vr };
      else if (buf.length <= INLINE_MAX) out[T] = { vr, InlineBinary: buf.toString('base64') };
      else out[T] = { vr, BulkDataURI: `${ctx.uri}/bulkdata/${[...path, T].join('/')}` };
    } else if (vr === 'PN') {
      out[T] = withValues(vr, valuesOf(e).map(personName));
    } else if (NUMERIC.has(vr)) {
      out[T] = withValues(vr, valuesOf(e).map(number));
    } else if (vr === 'AT') {
      out[T] = withValues(vr, valuesOf(e).map(attributeTag));
    } else {
      const values = valuesOf(e).map((x) => (x === null || x === undefined || x === '' ? null : typeof x === 'string' ? x : String(x)));
      out[T] = withValues(vr, values);
    }
  }
  return out;
}

function pixelVrFor(dict: DcmDict, transferSyntax: string): string {
  if (!ENCAPSULATED_NOT.has(transferSyntax)) return 'OB';
  const bits = Number(valuesOf(dict['00280100'] ?? {})[0]);
  return bits > 8 ? 'OW' : 'OB';
}

export function relativeInstanceUri(i: ResolvedInstance): string {
  return `/studies/${i.study_instance_uid}/series/${i.series_instance_uid}/instances/${i.sop_instance_uid}`;
}

export async function instanceMetadata(storage: BlobStorage, i: ResolvedInstance): Promise<JsonDataset> {
  const dict = await readStoredHeader(storage, i);
  return toDicomJsonDataset(dict, { uri: relativeInstanceUri(i), pixelVr: pixelVrFor(dict, i.transfer_syntax_uid) });
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function iso(v: unknown): string {
  return v instanceof Date ? v.toISOString() : String(v);
}

interface SeriesRow {
  id: number;
  series_instance_uid: string;
  num_instances: number;
  last_received_at: unknown;
}

/** The JSON array (relative BulkDataURIs) of one series, from the cache or built and cached. */
export async function seriesMetadataJson(db: Db, storage: BlobStorage, series: SeriesRow, instances: ResolvedInstance[]): Promise<{ json: string; cached: boolean }> {
  const stamp = iso(series.last_received_at);
  const row = (await db('series_metadata').where('series_instance_uid', series.series_instance_uid).first()) as
    | { instance_count: number; series_last_received_at: string; json: string }
    | undefined;
  if (row && Number(row.instance_count) === Number(series.num_instances) && row.series_last_received_at === stamp) {
    return { json: row.json, cached: true };
  }
  const datasets = await mapLimited(instances, BUILD_CONCURRENCY, (i) => instanceMetadata(storage, i));
  const json = JSON.stringify(datasets);
  // An instance arrived between listing and reading the series row: serve, but do not cache.
  if (instances.length !== Number(series.num_instances)) return { json, cached: false };
  await db('series_metadata')
    .insert({
      series_instance_uid: series.series_instance_uid,
      built_at: new Date().toISOString(),
      instance_count: Number(series.num_instances),
      series_last_received_at: stamp,
      json,
    })
    .onConflict('series_instance_uid')
    .merge();
  return { json, cached: false };
}

/** Stored BulkDataURIs are relative; the answer's are absolute, against the address the client used. */
export function absolutize(json: string, base: string): string {
  const safe = JSON.stringify(base).slice(1, -1);
  return json.replaceAll('"BulkDataURI":"/studies/', `"BulkDataURI":"${safe}/studies/`);
}

export function metadataHandler(deps: RouteDeps) {
  const { db, storage } = deps;
  return async (ctx: AppContext): Promise<void> => {
    const p = resourcePath(ctx);
    ctx.state.audit = { studyInstanceUid: p.study, details: { level: p.level } };
    const responseType = ctx.accepts('application/dicom+json', 'application/json');
    if (!responseType) {
      throw new HttpError(406, 'not_acceptable', 'metadata is answered as application/dicom+json (or application/json)');
    }
    const instances = await resolveInstances(db, p);
    let json: string;
    let cachedSeries = 0;
    if (p.level === 'instance') {
      json = JSON.stringify([await instanceMetadata(storage, instances[0]!)]);
    } else {
      const bySeries = new Map<number, ResolvedInstance[]>();
      for (const i of instances) {
        const list = bySeries.get(i.series_pk);
        if (list) list.push(i);
        else bySeries.set(i.series_pk, [i]);
      }
      const rows = (await db('series')
        .select('id', 'series_instance_uid', 'num_instances', 'last_received_at')
        .whereIn('id', [...bySeries.keys()])) as SeriesRow[];
      const byId = new Map(rows.map((r) => [Number(r.id), r]));
      const arrays: string[] = [];
      for (const [pk, list] of bySeries) {
        const row = byId.get(pk);
        if (!row) continue; // deleted meanwhile
        const r = await seriesMetadataJson(db, storage, row, list);
        if (r.cached) cachedSeries++;
        const inner = r.json.slice(1, -1);
        if (inner) arrays.push(inner);
      }
      json = `[${arrays.join(',')}]`;
    }
    const base = `${ctx.protocol}://${ctx.host}/dicom-web`;
    ctx.state.audit = { studyInstanceUid: p.study, details: { level: p.level, instances: instances.length, cachedSeries } };
    ctx.status = 200;
    ctx.type = responseType;
    ctx.body = absolutize(json, base);
  };
}
