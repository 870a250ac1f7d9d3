import dcmjs, { type NaturalizedDataset } from 'dcmjs';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../../dicom/implementation.js';
import { TS } from '../../dicom/transfer-syntax.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

/** denaturalizeDataset drops unknown keywords with only a log line: a typo must fail loudly. */
function assertKnownKeywords(value: unknown): void {
  if (Array.isArray(value)) {
    value.forEach(assertKnownKeywords);
    return;
  }
  if (!value || typeof value !== 'object' || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return;
  for (const [key, v] of Object.entries(value)) {
    if (key === '_vrMap') continue;
    if (!(key in DicomMetaDictionary.nameMap)) throw new Error(`unknown DICOM keyword ${key}`);
    if (Array.isArray(v)) assertKnownKeywords(v.filter((x: unknown) => x && typeof x === 'object'));
  }
}

/** A naturalized data set as a Part 10 file in Explicit VR Little Endian, with the node's meta. */
export function writePart10(ds: NaturalizedDataset): Buffer {
  assertKnownKeywords(ds);
  const meta: NaturalizedDataset = {
    FileMetaInformationVersion: new Uint8Array([0x00, 0x01]).buffer,
    MediaStorageSOPClassUID: ds.SOPClassUID,
    MediaStorageSOPInstanceUID: ds.SOPInstanceUID,
    TransferSyntaxUID: TS.ExplicitVRLittleEndian,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  };
  const file = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  file.dict = DicomMetaDictionary.denaturalizeDataset(ds);
  return Buffer.from(file.write());
}
