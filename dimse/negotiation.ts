import { TS } from '../src/dicom/transfer-syntax.js';
import { VERIFICATION_SOP_CLASS, isStandardStorageSopClass, isStorableTransferSyntax } from '../src/dicom/uids.js';

/**
 * Presentation-context decisions for the SCP (PS3.8 9.3.2.2). Pure, so the policy is testable
 * without a network: which abstract syntaxes are served, and which proposed transfer syntax wins.
 */

export type ContextDecision =
  | { accept: true; transferSyntaxUid: string }
  | { accept: false; reason: 'abstract-syntax-not-supported' | 'transfer-syntaxes-not-supported' };

export interface NegotiationPolicy {
  acceptUnknownSopClasses: boolean;
  /** Non-storage abstract syntaxes served (query/retrieve, storage commitment): ScpServices. */
  serviceSyntaxes?: ReadonlySet<string>;
}

/** Commands and identifiers are small: any of the uncompressed syntaxes, the caller's order. */
export const COMMAND_SYNTAXES: ReadonlySet<string> = new Set<string>([
  TS.ExplicitVRLittleEndian,
  TS.ImplicitVRLittleEndian,
  TS.ExplicitVRBigEndian,
]);

export function decideContext(abstractSyntax: string, proposed: string[], policy: NegotiationPolicy): ContextDecision {
  if (policy.serviceSyntaxes?.has(abstractSyntax)) {
    const ts = proposed.find((t) => COMMAND_SYNTAXES.has(t));
    return ts ? { accept: true, transferSyntaxUid: ts } : { accept: false, reason: 'transfer-syntaxes-not-supported' };
  }
  const isServed =
    abstractSyntax === VERIFICATION_SOP_CLASS ||
    isStandardStorageSopClass(abstractSyntax) ||
    (policy.acceptUnknownSopClasses && /^[0-9]+(\.[0-9]+)+$/.test(abstractSyntax));
  if (!isServed) return { accept: false, reason: 'abstract-syntax-not-supported' };
  // Store as received: the caller lists its transfer syntaxes in its order of preference, so its
  // first one we can store is taken and the data set is never transcoded on the way in.
  const first = proposed.find(isStorableTransferSyntax);
  return first ? { accept: true, transferSyntaxUid: first } : { accept: false, reason: 'transfer-syntaxes-not-supported' };
}
