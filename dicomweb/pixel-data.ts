import { HttpError } from '../src/http/errors.js';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';
import { PixelDataUnavailable, pixelDataLayout as layoutOf, type PixelDataLayout, type RangeStore } from '../src/dicom/pixel-data.js';

/**
 * The kernel's pixel-data walker (src/dicom/pixel-data.ts) as DICOMweb answers it: no pixel data
 * is 404 and a damaged object 500 (the HTTP table's 'not-found' and 'internal'); frames this node
 * cannot cut out are 501, which DICOMweb says for what is not implemented (the table's
 * 'unsupported' is a 415, about the request's media type).
 */
export async function pixelDataLayout(storage: RangeStore, key: string, ts: string): Promise<PixelDataLayout> {
  try {
    return await layoutOf(storage, key, ts);
  } catch (err) {
    if (err instanceof PixelDataUnavailable && err.reason === 'not-implemented') throw new HttpError(501, 'not_implemented', err.message);
    throw err;
  }
}

/** Frame ranges kept at most, over every cached layout (a 512² CT slice is one; ~60 bytes each). */
const MAX_CACHED_RANGES = 200_000;

/**
 * The frame index of stored instances, kept so that a viewer asking for the frames of a series
 * one request at a time pays the header walk (a stat and a few ranged reads) once per instance,
 * then one ranged read per frame. Keyed by the blob and the version of the row that names it
 * (key, size, stored_at): an instance stored again gets a new stored_at, so its old layout is
 * never applied to the new bytes once the index names them. Least recently used first out.
 * Layouts handed out are shared: read-only.
 */
class LayoutCache {
  private readonly entries = new Map<string, PixelDataLayout>();
  private ranges = 0;

  constructor(private readonly maxRanges: number) {}

  get(id: string): PixelDataLayout | undefined {
    const hit = this.entries.get(id);
    if (hit) {
      this.entries.delete(id);
      this.entries.set(id, hit);
    }
    return hit;
  }

  set(id: string, layout: PixelDataLayout): void {
    const weight = weightOf(layout);
    if (weight > this.maxRanges) return;
    const old = this.entries.get(id);
    if (old) {
      this.entries.delete(id);
      this.ranges -= weightOf(old);
    }
    this.entries.set(id, layout);
    this.ranges += weight;
    for (const [k, v] of this.entries) {
      if (this.ranges <= this.maxRanges) break;
      this.entries.delete(k);
      this.ranges -= weightOf(v);
    }
  }
}

function weightOf(layout: PixelDataLayout): number {
  return 1 + layout.frames.reduce((n, f) => n + f.length, 0);
}

/** One cache per store: several nodes in one process (the tests) never share entries. */
const caches = new WeakMap<RangeStore, LayoutCache>();

/** The layout of a stored instance's Pixel Data, from the cache when this version was walked before. */
export async function storedPixelDataLayout(storage: RangeStore, row: StoredInstanceRow): Promise<PixelDataLayout> {
  if (row.stored_at === undefined) return pixelDataLayout(storage, row.storage_key, row.transfer_syntax_uid);
  const id = `${row.storage_key}\n${row.size_bytes}\n${row.stored_at}\n${row.transfer_syntax_uid}`;
  let layouts = caches.get(storage);
  if (!layouts) caches.set(storage, (layouts = new LayoutCache(MAX_CACHED_RANGES)));
  const hit = layouts.get(id);
  if (hit) return hit;
  const layout = await pixelDataLayout(storage, row.storage_key, row.transfer_syntax_uid);
  layouts.set(id, layout);
  return layout;
}
