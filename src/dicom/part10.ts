import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from './implementation.js';

/**
 * Builds the 128-byte preamble, "DICM" and the File Meta Information group (PS3.10 7.1) in
 * Explicit VR Little Endian. The DIMSE receiver writes this first and then streams the data set
 * bytes exactly as they arrived, so a received instance becomes a Part 10 file without ever
 * being decoded or held in memory.
 */

export interface FileMetaFields {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  sourceAeTitle?: string;
}

function element(group: number, elem: number, vr: string, value: Buffer): Buffer {
  const long = vr === 'OB' || vr === 'OW' || vr === 'UN' || vr === 'SQ' || vr === 'UT';
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(elem, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

/** UI values are padded with NUL, text values with a space, to an even length (PS3.5 6.2). */
function padded(s: string, pad: '\0' | ' '): Buffer {
  return Buffer.from(s.length % 2 ? s + pad : s, 'latin1');
}

export function fileMetaPrefix(f: FileMetaFields): Buffer {
  const body = [
    element(0x0002, 0x0001, 'OB', Buffer.from([0x00, 0x01])),
    element(0x0002, 0x0002, 'UI', padded(f.sopClassUid, '\0')),
    element(0x0002, 0x0003, 'UI', padded(f.sopInstanceUid, '\0')),
    element(0x0002, 0x0010, 'UI', padded(f.transferSyntaxUid, '\0')),
    element(0x0002, 0x0012, 'UI', padded(IMPLEMENTATION_CLASS_UID, '\0')),
    element(0x0002, 0x0013, 'SH', padded(IMPLEMENTATION_VERSION_NAME, ' ')),
  ];
  if (f.sourceAeTitle) body.push(element(0x0002, 0x0016, 'AE', padded(f.sourceAeTitle.trim(), ' ')));
  const bodyBuf = Buffer.concat(body);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(bodyBuf.length, 0);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), element(0x0002, 0x0000, 'UL', groupLength), bodyBuf]);
}
