/**
 * The sequences whose items the index keeps, so that QIDO-RS (and later C-FIND) can match on
 * them (PS3.4 C.2.2.2.6 Sequence Matching) and return them. Kept deliberately small: each entry
 * costs rows at ingest. Read by the header parser (which items to extract), the catalog (where to
 * store them) and the query engine (which `Sequence.Item` keys it serves).
 *
 * - Request Attributes Sequence (0040,0275), series level: PS3.18 Table 10.6.1-5 lists its
 *   Requested Procedure ID and Scheduled Procedure Step ID as series matching keys; RIS/worklist
 *   integrations also look series up by the accession number of the request.
 * - Procedure Code Sequence (0008,1032), study level (PS3.4 C.6.1.1.2 study keys): which
 *   procedure a study was, by code and coding scheme.
 */

export interface IndexedItemAttribute {
  keyword: string;
  /** Eight upper-case hex digits. */
  tag: string;
  vr: 'SH' | 'LO' | 'UI' | 'CS';
}

export interface IndexedSequence {
  keyword: string;
  tag: string;
  level: 'study' | 'series';
  items: readonly IndexedItemAttribute[];
}

export const INDEXED_SEQUENCES: readonly IndexedSequence[] = [
  {
    keyword: 'RequestAttributesSequence',
    tag: '00400275',
    level: 'series',
    items: [
      { keyword: 'AccessionNumber', tag: '00080050', vr: 'SH' },
      { keyword: 'ScheduledProcedureStepID', tag: '00400009', vr: 'SH' },
      { keyword: 'RequestedProcedureID', tag: '00401001', vr: 'SH' },
    ],
  },
  {
    keyword: 'ProcedureCodeSequence',
    tag: '00081032',
    level: 'study',
    items: [
      { keyword: 'CodeValue', tag: '00080100', vr: 'SH' },
      { keyword: 'CodingSchemeDesignator', tag: '00080102', vr: 'SH' },
      { keyword: 'CodeMeaning', tag: '00080104', vr: 'LO' },
    ],
  },
];

/** The index keeps at most this many characters of an item value (LO is 64; SH, CS 16; UI 64). */
export const ITEM_VALUE_MAX = 64;
/** And at most this many items of one sequence: a hostile header must not cost unbounded rows. */
export const ITEMS_MAX = 32;

/**
 * The indexed sequences of one instance: sequence tag → its items, each item tag → value. A
 * sequence the instance does not carry is absent (or an empty list).
 */
export type SequenceItems = Record<string, Array<Record<string, string>>>;
