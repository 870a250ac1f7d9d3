import { TS, transferSyntax } from '../src/dicom/transfer-syntax.js';
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

/**
 * `*`: every instance as stored. A UID: every instance in it (transcoded where stored otherwise).
 * `byDefault`: no syntax was named, so the UID is the default one, Explicit VR Little Endian
 * (PS3.18 §8.7.3.4), and each instance's own syntax comes from retrieveSyntaxFor.
 */
export type RetrieveChoice = { ok: true; transferSyntax: '*' | string; byDefault?: true } | { ok: false; reasons: string[] };

const BY_DEFAULT = { ok: true, transferSyntax: TS.ExplicitVRLittleEndian, byDefault: true } as const;

/**
 * WADO-RS instance-resource negotiation (PS3.18 §8.7.3.5, Table 8.7.3-5): the first acceptable
 * range picks the answer. `*\/*`, `multipart/*`, `multipart/related` with `type` absent or
 * application/dicom (quoted or not) and `transfer-syntax` absent get the default transfer syntax
 * (§8.7.3.4: Explicit VR Little Endian, see retrieveSyntaxFor); `transfer-syntax=*` answers as
 * stored. An explicit transfer syntax is served when every stored syntax either is it or can be
 * transcoded to it (`whyNot` says why one cannot; src/dicom/transcode-syntaxes.ts). Bulk data /
 * frames media types (application/octet-stream, image/*, video/*) are not representations of an
 * instance resource.
 */
export function negotiateRetrieve(
  header: string | undefined,
  stored: ReadonlySet<string>,
  whyNot: (from: string, to: string) => string | undefined,
): RetrieveChoice {
  const reasons: string[] = [];
  for (const r of parseAccept(header)) {
    if (r.type === '*/*' || r.type === 'multipart/*') return BY_DEFAULT;
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
    if (ts === undefined) return BY_DEFAULT;
    if (ts === '*') return { ok: true, transferSyntax: '*' };
    const blockers = [...stored].flatMap((s) => whyNot(s, ts) ?? []);
    if (blockers.length === 0) return { ok: true, transferSyntax: ts };
    reasons.push(`transfer syntax ${ts} cannot be produced: ${blockers[0]} (ask for transfer-syntax=* to get the instances as stored)`);
  }
  return { ok: false, reasons };
}

/**
 * The syntax one instance stored in `storedTs` is sent in ('*' when as stored). With the default
 * (no syntax named), PS3.18 §8.7.3.4: Explicit VR Little Endian, except pixel data the node holds
 * only in lossy form, which goes as received (decompressing it gains nothing and loses nothing
 * the client could not do), and pixel data no codec here decodes (video, JPEG extended/lossless
 * process 14, JPEG XL …), which goes as stored too, its part's Content-Type naming its syntax.
 */
export function retrieveSyntaxFor(
  choice: { transferSyntax: string; byDefault?: true },
  storedTs: string,
  whyNot: (from: string, to: string) => string | undefined,
): string {
  if (!choice.byDefault) return choice.transferSyntax;
  if (storedTs === choice.transferSyntax || transferSyntax(storedTs)?.lossy) return '*';
  return whyNot(storedTs, choice.transferSyntax) ? '*' : choice.transferSyntax;
}
