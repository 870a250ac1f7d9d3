import dcmjs from 'dcmjs';

/**
 * Rewrite elements of a Part 10 file (tests only): `{ '0020000E': '1.2.3' }` sets a value,
 * `null` removes the element. Both the data set and, for the SOP UIDs, the meta stay consistent.
 */
export function rewrite(bytes: Buffer, changes: Record<string, string | null>): Buffer {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  const dict = dcmjs.data.DicomMessage.readFile(ab);
  for (const [tag, value] of Object.entries(changes)) {
    if (value === null) {
      delete dict.dict[tag];
      continue;
    }
    const vr = dict.dict[tag]?.vr ?? 'UI';
    dict.dict[tag] = { vr, Value: [value] };
    if (tag === '00080018') dict.meta['00020003'] = { vr: 'UI', Value: [value] };
  }
  return Buffer.from(dict.write());
}
