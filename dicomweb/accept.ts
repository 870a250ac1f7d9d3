import { parseMediaType, type MediaType } from './multipart.js';

/** One media range of an Accept header (RFC 9110 §12.5.1), q split off, in preference order. */
export interface MediaRange extends MediaType {
  q: number;
}

/** Commas inside quoted parameter values do not split ranges. */
function splitList(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted && c === '\\' && i + 1 < value.length) {
      cur += c + value[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter(Boolean);
}

/** Ranges with q > 0, highest q first (ties keep header order). No header is `*\/*`. */
export function parseAccept(header: string | undefined): MediaRange[] {
  if (header === undefined || header.trim() === '') return [{ type: '*/*', params: {}, q: 1 }];
  const ranges: MediaRange[] = [];
  for (const item of splitList(header)) {
    const mt = parseMediaType(item);
    if (!mt) continue;
    const { q: qs, ...params } = mt.params;
    const q = qs === undefined ? 1 : Number(qs);
    if (!Number.isFinite(q) || q <= 0) continue;
    ranges.push({ type: mt.type, params, q: Math.min(q, 1) });
  }
  return ranges
    .map((r, i) => ({ r, i }))
    .sort((a, b) => b.r.q - a.r.q || a.i - b.i)
    .map(({ r }) => r);
}

export type RetrieveChoice = { ok: true; transferSyntax: '*' | string } | { ok: false; reasons: string[] };

/**
 * WADO-RS instance-resource negotiation (PS3.18 §8.7.3.5, Table 8.7.3-5): the first acceptable
 * range picks the answer. `*\/*`, `multipart/*`, `multipart/related` with `type` absent or
 * application/dicom (quoted or not) and `transfer-syntax` absent or `*` answer as stored. An
 * explicit transfer syntax is served when every stored syntax either is it or can be transcoded
 * to it (`whyNot` says why one cannot; src/dicom/transcode-syntaxes.ts). Bulk data / frames
 * media types (application/octet-stream, image/*, video/*) are not representations of an
 * instance resource.
 */
export function negotiateRetrieve(
  header: string | undefined,
  stored: ReadonlySet<string>,
  whyNot: (from: string, to: string) => string | undefined,
): RetrieveChoice {
  const reasons: string[] = [];
  for (const r of parseAccept(header)) {
    if (r.type === '*/*' || r.type === 'multipart/*') return { ok: true, transferSyntax: '*' };
    if (r.type !== 'multipart/related') {
      reasons.push(`${r.type} is not a representation of a study/series/instance (use multipart/related; type="application/dicom")`);
      continue;
    }
    const type = r.params.type?.toLowerCase();
    if (type !== undefined && type !== 'application/dicom') {
      reasons.push(
        `multipart/related; type=${type} is not a representation of a study/series/instance (use type="application/dicom"; frames and bulk data have their own resources)`,
      );
      continue;
    }
    const ts = r.params['transfer-syntax'];
    if (ts === undefined || ts === '*') return { ok: true, transferSyntax: '*' };
    const blockers = [...stored].flatMap((s) => whyNot(s, ts) ?? []);
    if (blockers.length === 0) return { ok: true, transferSyntax: ts };
    reasons.push(`transfer syntax ${ts} cannot be produced: ${blockers[0]} (ask for transfer-syntax=* to get the instances as stored)`);
  }
  return { ok: false, reasons };
}
