/**
 * Types for the parts of dcmjs 0.51 the project uses. dcmjs ships no declarations; these follow
 * node_modules/dcmjs/build/dcmjs.es.js. Only what is called is declared, so a wrong guess about
 * an unused corner cannot hide behind a type. Under ESM (`import dcmjs from 'dcmjs'`) the package's
 * "import" export resolves to build/dcmjs.es.js, whose default export is the object typed here.
 *
 * This file must stay a script (no top-level import/export) so that `declare module` declares the
 * module instead of augmenting one.
 *
 * The ESM build has a .js name and dcmjs's package.json has no "type": "module", so Node loads it
 * only through module-syntax detection (on by default since Node 20.19 / 22.7).
 */
declare module 'dcmjs' {
  /** A DICOM person name in the DICOM JSON model (PS3.18 F.2.2); dcmjs reads PN values as these. */
  export interface PersonNameValue {
    Alphabetic?: string;
    Ideographic?: string;
    Phonetic?: string;
  }

  /**
   * One value of an element as dcmjs holds it: strings for text VRs (DS and IS are parsed to
   * numbers on read), numbers for binary numeric VRs, PersonNameValue for PN, a nested dataset for
   * each SQ item, and ArrayBuffer for OB/OW/UN (a Uint8Array view when read with noCopy).
   */
  export type DicomJsonValue = string | number | PersonNameValue | DicomJsonDataset | ArrayBuffer | Uint8Array | null;

  /** An element in the DICOM JSON model (PS3.18 F.2), as dcmjs reads and writes it. */
  export interface DicomJsonElement {
    vr: string;
    /** Absent or empty for a zero-length element (and see readFile for the untilTag entry). */
    Value?: DicomJsonValue[];
    InlineBinary?: string;
    BulkDataURI?: string;
    /** The undecoded values dcmjs keeps on read so an unchanged element is written back verbatim. */
    _rawValue?: unknown;
  }

  /** A dataset keyed by 8 upper-case hex digits, e.g. "0020000D". */
  export type DicomJsonDataset = Record<string, DicomJsonElement>;

  /**
   * A dataset keyed by DICOM keyword ("PatientName"), values unwrapped when single.
   * `_vrMap` records a VR where the dictionary's is ambiguous (PixelData "ox", "xs" tags) or differs.
   */
  export interface NaturalizedDataset {
    [keyword: string]: unknown;
    _vrMap?: Record<string, string>;
  }

  export interface ReadFileOptions {
    /** Stop at this tag ("7FE00010"); with stopOnGreaterTag, also at the first tag after it. */
    untilTag?: string | null;
    /** Read the untilTag element's value too; otherwise only its tag is consumed. */
    includeUntilTagValue?: boolean;
    /** Return what parsed so far instead of throwing (truncation, unknown character sets). */
    ignoreErrors?: boolean;
    stopOnGreaterTag?: boolean;
    /** Binary values become views into the input instead of copies. */
    noCopy?: boolean;
    forceStoreRaw?: boolean;
  }

  export interface WriteOptions {
    /** Write over-long values of fixed-length VRs instead of throwing (over-long text is only logged). */
    allowInvalidVRLength?: boolean;
    /** Split each encapsulated frame into 20 KiB fragments (default true). */
    fragmentMultiframe?: boolean;
  }

  /** A Part 10 file: `meta` is group 0002, `dict` the dataset. */
  export class DicomDict {
    constructor(meta: DicomJsonDataset);
    meta: DicomJsonDataset;
    dict: DicomJsonDataset;
    upsertTag(tag: string, vr: string, values: DicomJsonValue[]): void;
    /**
     * Preamble, "DICM", group 0002 (explicit VR LE, group length computed) and then the dataset
     * in the meta's TransferSyntaxUID (explicit VR LE when absent; unknown syntaxes are written as
     * explicit VR LE).
     */
    write(options?: WriteOptions): ArrayBuffer;
  }

  export const DicomMessage: {
    /**
     * Parses a Part 10 file; throws on a missing "DICM" or a truncated meta even with ignoreErrors.
     * Caveats (0.51.1):
     * - When it stops at untilTag without includeUntilTagValue, dict[untilTag] is still set, to
     *   `{ vr: undefined, Value: 0 }` (not an array).
     * - A buffer cut inside the dataset does not reliably throw, even without ignoreErrors: a cut
     *   at an element boundary ends the parse normally, and a cut inside a text value returns that
     *   value truncated. Only the presence of dict[untilTag] proves the parse got that far.
     * - DS and IS values are returned as numbers; SpecificCharacterSet is rewritten to
     *   "ISO_IR 192" once its text has been decoded.
     */
    readFile(buffer: ArrayBuffer, options?: ReadFileOptions): DicomDict;
  };

  export interface DictionaryEntry {
    tag: string;
    vr: string;
    vm: string;
    name: string;
  }

  export const DicomMetaDictionary: {
    /**
     * A single-valued element becomes its value, except when that value is an object (PN, one SQ
     * item, an ArrayBuffer): then it is a Proxy'd one-element array that also answers as the
     * object, so `Object.prototype.toString` of a naturalized PixelData says ArrayBuffer.
     */
    naturalizeDataset(dataset: DicomJsonDataset): NaturalizedDataset;
    /** Unknown keywords are dropped with a log warning, not an error; over-long text is truncated. */
    denaturalizeDataset(dataset: NaturalizedDataset, nameMap?: Record<string, DictionaryEntry>): DicomJsonDataset;
    /** "2.25." followed by 39 random decimal digits (Math.random based). */
    uid(): string;
    /** Keyword to entry, e.g. nameMap.PatientName.tag === "(0010,0010)". */
    nameMap: Record<string, DictionaryEntry>;
  };

  export const data: {
    DicomDict: typeof DicomDict;
    DicomMessage: typeof DicomMessage;
    DicomMetaDictionary: typeof DicomMetaDictionary;
  };

  export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

  /** dcmjs's logger is a loglevel instance; "validation.dcmjs" is a child of it. */
  export interface Logger {
    setLevel(level: LogLevelName | number, persist?: boolean): void;
    getLevel(): number;
    getLogger(name: string): Logger;
  }

  export const log: Logger;

  const dcmjs: {
    data: typeof data;
    log: Logger;
  };
  export default dcmjs;
}
