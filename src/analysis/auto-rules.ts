import type { AutoRule } from '../config.js';

/**
 * AUTO_ANALYZE=rules: which stable studies are analysed without anyone asking. A study is
 * analysed when any rule matches; a rule matches when every criterion it names matches (lists:
 * any value; values compare case-insensitively; studyDescription is a case-insensitive regex).
 * The rules' schema and parsing are configuration's (src/config.ts), checked at start-up.
 */

export interface StudyTraits {
  modalities: string[];
  bodyParts: string[];
  callingAeTitles: string[];
  studyDescription: string | null;
}

const norm = (s: string) => s.trim().toUpperCase();
const anyOf = (want: string[] | undefined, have: string[]) => !want || want.some((w) => have.some((h) => norm(h) === norm(w)));

export function ruleMatches(rule: AutoRule, t: StudyTraits): boolean {
  if (!anyOf(rule.modalities, t.modalities)) return false;
  if (!anyOf(rule.bodyParts, t.bodyParts)) return false;
  if (!anyOf(rule.callingAeTitles, t.callingAeTitles)) return false;
  if (rule.studyDescription && !new RegExp(rule.studyDescription, 'i').test(t.studyDescription ?? '')) return false;
  return true;
}

/** The first matching rule, or undefined. */
export function matchingRule(rules: readonly AutoRule[], t: StudyTraits): AutoRule | undefined {
  return rules.find((r) => ruleMatches(r, t));
}
