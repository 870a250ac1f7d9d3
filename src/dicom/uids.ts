import dimse from 'dcmjs-dimse';

/** PS3.5 9.1: digits and dots, no leading zero in a component (except "0"), at most 64 chars. */
const UID_PATTERN = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

/** Whether a value is a well-formed UID: UIDs arrive from the network and become keys and paths. */
export function isValidUid(s: unknown): s is string {
  return typeof s === 'string' && s.length >= 1 && s.length <= 64 && UID_PATTERN.test(s);
}

/** SOP classes the node recognises (PS3.6 Annex A); transfer syntaxes are in transfer-syntax.ts. */

export const VERIFICATION_SOP_CLASS = '1.2.840.10008.1.1';
/** Encapsulated PDF Storage (PS3.3 A.45.1). */
export const ENCAPSULATED_PDF_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.104.1';

/**
 * Transfer syntaxes a dataset can be stored in. Every standard one lives under 1.2.840.10008.1.2;
 * the only exceptions are the web-only MIME-based ones (.6.x), which never appear on the wire.
 */
export function isStorableTransferSyntax(uid: string): boolean {
  return /^1\.2\.840\.10008\.1\.2(\.[0-9]+)*$/.test(uid) && !uid.startsWith('1.2.840.10008.1.2.6.');
}

/** dcmjs-dimse's named storage SOP classes (keyword → UID); isStandardStorageSopClass accepts more. */
export const NAMED_STORAGE_SOP_CLASSES: Readonly<Record<string, string>> = dimse.constants.StorageClass as Record<string, string>;
const knownStorage = new Set<string>(Object.values(NAMED_STORAGE_SOP_CLASSES));

/** Storage SOP classes outside the 1.2.840.10008.5.1.4.1.1 branch (PS3.4 B.5). */
export const OTHER_STORAGE_ROOTS: readonly string[] = [
  '1.2.840.10008.5.1.4.34.', // RT treatment records and delivery instructions
  '1.2.840.10008.5.1.4.38.', // Hanging Protocol
  '1.2.840.10008.5.1.4.39.', // Color Palette
  '1.2.840.10008.5.1.4.43.', // Generic Implant Template
  '1.2.840.10008.5.1.4.44.', // Implant Assembly Template
  '1.2.840.10008.5.1.4.45.', // Implant Template Group
];

/** True for every standard storage SOP class, including ones added after dcmjs-dimse's list. */
export function isStandardStorageSopClass(uid: string): boolean {
  if (knownStorage.has(uid)) return true;
  if (uid.startsWith('1.2.840.10008.5.1.4.1.1.')) return true;
  return OTHER_STORAGE_ROOTS.some((root) => uid.startsWith(root));
}
