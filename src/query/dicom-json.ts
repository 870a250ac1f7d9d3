import type { DicomJsonDataset } from '../dicom/dicom-json.js';
import type { AttributeDef } from './attributes.js';
import type { AttributeMap, AttributeValue } from './engine.js';

/**
 * The DICOM JSON model (PS3.18 Annex F.2) of an attribute map from the query engine:
 * `{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}`, PN as `[{"Alphabetic": …}]` (with
 * Ideographic/Phonetic from the `=` groups), IS/DS/US as numbers, multi-valued strings split on
 * `\`, an attribute without a value as `{"vr": "XX"}` (no Value), a sequence as
 * `{"vr": "SQ", "Value": [item, …]}` with each item a data set of the same form.
 */

const NUMERIC = new Set(['IS', 'DS', 'US', 'SS', 'UL', 'SL', 'FL', 'FD', 'UV', 'SV']);
/** VRs that are a single value even when they hold a backslash. */
const SINGLE = new Set(['LT', 'ST', 'UT', 'UR']);

function personName(v: string): Record<string, string> {
  const [alphabetic, ideographic, phonetic] = v.split('=');
  const out: Record<string, string> = {};
  if (alphabetic) out.Alphabetic = alphabetic;
  if (ideographic) out.Ideographic = ideographic;
  if (phonetic) out.Phonetic = phonetic;
  return out;
}

export function toDicomJsonValue(vr: string, value: AttributeValue): unknown[] | undefined {
  if (value === null || value === '' || Array.isArray(value)) return undefined;
  if (NUMERIC.has(vr)) {
    const values = typeof value === 'number' ? [value] : value.split('\\').map((s) => Number(s.trim()));
    const nums = values.filter((n) => Number.isFinite(n));
    return nums.length ? nums : undefined;
  }
  const s = String(value);
  const parts = SINGLE.has(vr) ? [s] : s.split('\\');
  if (vr === 'PN') return parts.map(personName);
  return parts;
}

/** One data set: the attributes in `attributes` (tag order), valued from `row`. */
export function toDicomJson(row: AttributeMap, attributes: readonly AttributeDef[]): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  for (const d of attributes) {
    const v = row[d.keyword] ?? null;
    if (d.kind === 'sequence') {
      // Items carry the item attributes the index has a value for; an empty sequence has no Value.
      const items = Array.isArray(v) ? v : [];
      const itemDefs = d.items ?? [];
      out[d.tag] = items.length
        ? {
            vr: 'SQ',
            Value: items.map((item) =>
              toDicomJson(
                item,
                itemDefs.filter((a) => item[a.keyword] != null),
              ),
            ),
          }
        : { vr: 'SQ' };
      continue;
    }
    const Value = toDicomJsonValue(d.vr, v);
    out[d.tag] = Value ? { vr: d.vr, Value } : { vr: d.vr };
  }
  return out;
}
