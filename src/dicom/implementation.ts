/**
 * The node's DICOM implementation identity (PS3.7 D.3.3.2), sent in association negotiation and
 * written into the file meta of every instance it writes. A UUID-derived UID (PS3.5 B.2) so no
 * organisational root is needed.
 */
export const IMPLEMENTATION_CLASS_UID = '2.25.252548566646399976925187789403983238577';
export const IMPLEMENTATION_VERSION_NAME = 'RADIANT_0.1';
