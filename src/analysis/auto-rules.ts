import { z } from 'zod';

/**
 * AUTO_ANALYZE=rules: which stable studies are analysed without anyone asking. A study is
 * analysed when any rule matches; a rule matches when every criterion it names matches (lists:
 * any value; values compare case-insensitively; studyDescription is a case-insensitive regex).
 */

const list = z.array(z.string().trim().min(1).max(64)).min(1).max(50);

export const autoRule = z
  .object({
    modalities: list.optional(),
    bodyParts: list.optional(),
    callingAeTitles: list.optional(),
    studyDescription: z
      .string()
      .min(1)
      .max(200)
      .refine((s) => {
        try {
          new RegExp(s, 'i');
          return true;
        } catch {
          return false;
        }
      }, 'not a valid regular expression')
      .optional(),
    analysisType: z.enum(['primary', 'comparison']).default('primary'),
  })
  .strict();

export type AutoRule = z.infer<typeof autoRule>;

export class AutoRulesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AutoRulesError';
  }
}

export function parseAutoRules(json: string | undefined): AutoRule[] {
  if (!json) throw new AutoRulesError('AUTO_ANALYZE=rules needs AUTO_ANALYZE_RULES (a JSON array of rules)');
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new AutoRulesError(`AUTO_ANALYZE_RULES is not JSON: ${(err as Error).message}`);
  }
  const parsed = z.array(autoRule).min(1).max(100).safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new AutoRulesError(`AUTO_ANALYZE_RULES ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return parsed.data;
}

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
