/**
 * A flat data set (text and binary-number elements, no sequences, no pixel data) written straight
 * to bytes in a native transfer syntax: C-FIND identifiers and DIMSE command sets, which are
 * written hundreds of times a second. dcmjs writes them too, but through its naturalized model and
 * a whole-dictionary copy per data set (about 2 ms each), which made a 336-answer C-FIND take
 * 0.7 s; this writes the same bytes (tag order, even lengths, UI padded with NUL and other text
 * with a space, PS3.5 6.2 and 7.1) in a few microseconds.
 */

export interface FlatElement {
  /** (gggg,eeee) as one number: 0x00100010 for PatientName. */
  tag: number;
  vr: string;
  /** Text VRs: the value as DICOM writes it (values joined by `\`, PN groups by `=`); binary VRs: the numbers. */
  value: string | readonly number[];
}

export interface FlatSyntax {
  explicitVr: boolean;
  littleEndian: boolean;
}

/** Bytes per value of the binary-number VRs this writer knows. */
const BINARY: Readonly<Record<string, number>> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8 };
/** Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1). */
const LONG_LENGTH = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

function valueBytes(e: FlatElement, littleEndian: boolean): Buffer {
  const size = BINARY[e.vr];
  if (size !== undefined) {
    if (typeof e.value === 'string') throw new Error(`${e.vr} element ${e.tag.toString(16)} needs numbers`);
    const b = Buffer.alloc(size * e.value.length);
    e.value.forEach((n, i) => {
      const at = i * size;
      if (e.vr === 'US') littleEndian ? b.writeUInt16LE(n, at) : b.writeUInt16BE(n, at);
      else if (e.vr === 'SS') littleEndian ? b.writeInt16LE(n, at) : b.writeInt16BE(n, at);
      else if (e.vr === 'UL') littleEndian ? b.writeUInt32LE(n, at) : b.writeUInt32BE(n, at);
      else if (e.vr === 'SL') littleEndian ? b.writeInt32LE(n, at) : b.writeInt32BE(n, at);
      else if (e.vr === 'FL') littleEndian ? b.writeFloatLE(n, at) : b.writeFloatBE(n, at);
      else littleEndian ? b.writeDoubleLE(n, at) : b.writeDoubleBE(n, at);
    });
    return b;
  }
  if (typeof e.value !== 'string') throw new Error(`${e.vr} element ${e.tag.toString(16)} needs text`);
  const text = Buffer.from(e.value, 'utf8');
  if (text.length % 2 === 0) return text;
  return Buffer.concat([text, Buffer.from(e.vr === 'UI' ? '\0' : ' ', 'latin1')]);
}

/** The elements in tag order, each as its header and padded value, in `syntax`. */
export function writeFlatDataset(elements: readonly FlatElement[], syntax: FlatSyntax): Buffer {
  const sorted = [...elements].sort((a, b) => a.tag - b.tag);
  const parts: Buffer[] = [];
  for (const e of sorted) {
    const value = valueBytes(e, syntax.littleEndian);
    const long = syntax.explicitVr && LONG_LENGTH.has(e.vr);
    if (syntax.explicitVr && !long && value.length > 0xfffe) throw new Error(`${e.vr} value of ${e.tag.toString(16)} is too long`);
    const head = Buffer.alloc(long ? 12 : 8);
    const group = e.tag >>> 16;
    const element = e.tag & 0xffff;
    if (syntax.littleEndian) {
      head.writeUInt16LE(group, 0);
      head.writeUInt16LE(element, 2);
    } else {
      head.writeUInt16BE(group, 0);
      head.writeUInt16BE(element, 2);
    }
    if (!syntax.explicitVr) head.writeUInt32LE(value.length, 4);
    else {
      head.write(e.vr, 4, 'latin1');
      if (long) syntax.littleEndian ? head.writeUInt32LE(value.length, 8) : head.writeUInt32BE(value.length, 8);
      else syntax.littleEndian ? head.writeUInt16LE(value.length, 6) : head.writeUInt16BE(value.length, 6);
    }
    parts.push(head, value);
  }
  return Buffer.concat(parts);
}
