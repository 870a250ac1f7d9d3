/**
 * Text bytes to Unicode per Specific Character Set (0008,0005), PS3.5 §6.1: every defined term,
 * single-byte (ISO_IR 100 …), multi-byte without code extensions (ISO_IR 192, GB18030, GBK) and
 * the ISO 2022 code extensions, whose escape sequences switch G0 and G1 inside a value (§6.1.2.5).
 * The byte-level decoding is Node's own (ICU TextDecoder); only the ISO 2022 switching is done
 * here, because no decoder speaks DICOM's mix (ISO-2022-JP has no G1, EUC-KR no escapes).
 */

/** How one coded character set's bytes are read. */
interface CodedSet {
  /** 'ascii' G0 bytes as they are; a TextDecoder label otherwise. */
  decoder: string;
  /** Bytes per character; for 94×94 sets (2) the bytes are shifted to GR for the EUC decoder. */
  width: 1 | 2;
  /** JIS X 0212 in EUC-JP is prefixed by SS3 (0x8F). */
  prefix?: number;
  /** JIS X 0201 katakana: GR byte b is U+FF61 + (b − 0xA1). */
  katakana?: boolean;
}

const ASCII: CodedSet = { decoder: 'ascii', width: 1 };
/** GR bytes with no G1 set designated: read as ISO 8859-1 rather than lost. */
const GR_FALLBACK: CodedSet = { decoder: 'latin1', width: 1 };
const sb = (decoder: string): CodedSet => ({ decoder, width: 1 });

/** Single-byte G1 sets by their ISO-IR number, with their TextDecoder label. */
const G1_SINGLE: Record<string, CodedSet> = {
  '100': sb('iso-8859-1'),
  '101': sb('iso-8859-2'),
  '109': sb('iso-8859-3'),
  '110': sb('iso-8859-4'),
  '144': sb('iso-8859-5'),
  '127': sb('iso-8859-6'),
  '126': sb('iso-8859-7'),
  '138': sb('iso-8859-8'),
  '148': sb('iso-8859-9'),
  '166': sb('windows-874'),
  '203': sb('iso-8859-15'),
  '13': { decoder: 'katakana', width: 1, katakana: true },
};

/** Escape sequences (the bytes after ESC) and the set each designates, to G0 or G1. */
const ESCAPES: Array<{ seq: string; g: 0 | 1; set: CodedSet }> = [
  { seq: '(B', g: 0, set: ASCII },
  { seq: '(J', g: 0, set: ASCII }, // JIS X 0201 Romaji: read as ASCII so 5CH stays the delimiter
  { seq: '$B', g: 0, set: { decoder: 'euc-jp', width: 2 } },
  { seq: '$@', g: 0, set: { decoder: 'euc-jp', width: 2 } },
  { seq: '$(D', g: 0, set: { decoder: 'euc-jp', width: 2, prefix: 0x8f } },
  { seq: ')I', g: 1, set: G1_SINGLE['13']! },
  { seq: '$)C', g: 1, set: { decoder: 'euc-kr', width: 2 } },
  { seq: '$)A', g: 1, set: { decoder: 'gbk', width: 2 } },
  { seq: '-A', g: 1, set: G1_SINGLE['100']! },
  { seq: '-B', g: 1, set: G1_SINGLE['101']! },
  { seq: '-C', g: 1, set: G1_SINGLE['109']! },
  { seq: '-D', g: 1, set: G1_SINGLE['110']! },
  { seq: '-L', g: 1, set: G1_SINGLE['144']! },
  { seq: '-G', g: 1, set: G1_SINGLE['127']! },
  { seq: '-F', g: 1, set: G1_SINGLE['126']! },
  { seq: '-H', g: 1, set: G1_SINGLE['138']! },
  { seq: '-M', g: 1, set: G1_SINGLE['148']! },
  { seq: '-T', g: 1, set: G1_SINGLE['166']! },
  { seq: '-b', g: 1, set: G1_SINGLE['203']! },
];

/** Terms without code extensions, decoded whole by one decoder (§6.1.2.3 and Table C.12-5). */
const WHOLE: Record<string, string> = {
  ISO_IR_6: 'latin1',
  ISO_IR_100: 'iso-8859-1',
  ISO_IR_101: 'iso-8859-2',
  ISO_IR_109: 'iso-8859-3',
  ISO_IR_110: 'iso-8859-4',
  ISO_IR_144: 'iso-8859-5',
  ISO_IR_127: 'iso-8859-6',
  ISO_IR_126: 'iso-8859-7',
  ISO_IR_138: 'iso-8859-8',
  ISO_IR_148: 'iso-8859-9',
  ISO_IR_166: 'windows-874',
  ISO_IR_203: 'iso-8859-15',
  // JIS X 0201 proper is a subset of Shift_JIS; files labelled ISO_IR 13 in the wild carry
  // Shift_JIS double-byte text, which DCMTK and Orthanc read the same way.
  ISO_IR_13: 'shift_jis',
  ISO_IR_192: 'utf-8',
  GB18030: 'gb18030',
  GBK: 'gbk',
};

/** Every defined term of (0008,0005) decoded here (PS3.5 §6.1, Tables C.12-2 to C.12-5), as written in DICOM. */
const ISO_2022_IRS = ['6', '100', '101', '109', '110', '144', '127', '126', '138', '148', '166', '203', '13', '87', '159', '149', '58'];
export const SUPPORTED_CHARACTER_SETS: readonly string[] = [
  ...Object.keys(WHOLE).map((k) => k.replace(/_(\d+)$/, ' $1')),
  ...ISO_2022_IRS.map((n) => `ISO 2022 IR ${n}`),
];
const KNOWN = new Set(SUPPORTED_CHARACTER_SETS.map(term));

function term(t: string): string {
  return t.trim().toUpperCase().replace(/\s+/g, '_');
}

/** The terms of (0008,0005) this decoder does not know (each is read as the default repertoire). */
export function unknownCharacterSets(terms: readonly string[]): string[] {
  return terms.filter((t) => {
    const k = term(t);
    return k !== '' && !KNOWN.has(k);
  });
}

const decoders = new Map<string, TextDecoder>();
function decoderFor(label: string): TextDecoder {
  let d = decoders.get(label);
  if (!d) {
    d = new TextDecoder(label);
    decoders.set(label, d);
  }
  return d;
}

/** G1 as value 1 of (0008,0005) sets it: the state every value (and each reset) starts in. */
function initialG1(first: string): CodedSet | undefined {
  const m = /^ISO_2022_IR_(\d+)$/.exec(term(first));
  return m ? G1_SINGLE[m[1]!] : undefined;
}

/** Delimiters before which the initial state is active again (§6.1.2.5.3): CR, LF, FF, TAB, \, and ^ = in PN. */
function resets(b: number, pn: boolean): boolean {
  return b === 0x0d || b === 0x0a || b === 0x0c || b === 0x09 || b === 0x5c || (pn && (b === 0x5e || b === 0x3d));
}

/**
 * Decodes a text element's bytes (all its values, backslashes included) to a string. `terms` are
 * the values of (0008,0005) in force (empty: the default repertoire); `pn` makes ^ and = reset the
 * code extensions as PS3.5 requires for Person Names. Unknown terms read as the default repertoire
 * (bytes above 7FH as ISO 8859-1) rather than losing the value.
 */
export function decodeText(bytes: Uint8Array, terms: readonly string[], pn = false): string {
  const first = terms[0] ?? '';
  const extended = terms.some((t) => term(t).startsWith('ISO_2022'));
  if (!extended) return decoderFor(WHOLE[term(first)] ?? 'latin1').decode(bytes);

  const g1Initial = initialG1(first);
  let g0 = ASCII;
  let g1 = g1Initial;
  let out = '';
  let run: number[] = [];
  let runSet: CodedSet | undefined;
  const flush = () => {
    if (run.length && runSet) out += decodeRun(run, runSet);
    run = [];
    runSet = undefined;
  };
  const push = (set: CodedSet, ...b: number[]) => {
    if (runSet !== set) flush();
    runSet = set;
    run.push(...b);
  };

  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x1b) {
      const esc = ESCAPES.find((e) => matches(bytes, i + 1, e.seq));
      if (esc) {
        if (esc.g === 0) g0 = esc.set;
        else g1 = esc.set;
        i += esc.seq.length;
      }
      // An unknown escape is dropped with its ESC: the bytes after it still read as text.
      continue;
    }
    if (b < 0x80) {
      if (g0.width === 2 && b >= 0x21 && b <= 0x7e && i + 1 < bytes.length) {
        push(g0, ...(g0.prefix ? [g0.prefix] : []), b | 0x80, bytes[i + 1]! | 0x80);
        i++;
        continue;
      }
      if (resets(b, pn) || b < 0x20) {
        g0 = ASCII;
        g1 = g1Initial;
      }
      push(ASCII, b);
      continue;
    }
    const set = g1 ?? GR_FALLBACK;
    if (set.width === 2 && i + 1 < bytes.length) {
      push(set, b, bytes[i + 1]!);
      i++;
    } else {
      push(set, b);
    }
  }
  flush();
  return out;
}

function matches(bytes: Uint8Array, at: number, seq: string): boolean {
  for (let k = 0; k < seq.length; k++) if (bytes[at + k] !== seq.charCodeAt(k)) return false;
  return true;
}

function decodeRun(run: number[], set: CodedSet): string {
  if (set.decoder === 'ascii') return Buffer.from(run).toString('latin1');
  if (set.katakana) return run.map((b) => (b >= 0xa1 && b <= 0xdf ? String.fromCharCode(0xff61 + b - 0xa1) : '\ufffd')).join('');
  return decoderFor(set.decoder).decode(Uint8Array.from(run));
}
