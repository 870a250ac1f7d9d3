/**
 * Whether an analysis names a label (pure), for `radiant eval`. A label is predicted positive when
 * a finding whose category is not "normal" mentions it in its description, or the impression
 * does, in a mention that is not negated:
 * - matching is case-insensitive on whole words; "_", "-" and punctuation count as spaces, and the
 *   label's last word may take a plural "s"/"es" ("pleural_effusion" matches "Pleural effusions");
 * - a mention is negated when, in its clause (text between . ; : ! ? newline, "but", "however",
 *   "although", "though", "whereas", "except"), a negation word (no, not, without, negative,
 *   absent, absence, free, neither, nor, never, none) is among the 5 words before it, or it is
 *   followed within 4 words by "absent", "excluded", "resolved", "ruled out" or "not seen" /
 *   "not identified"…; "no change", "no interval change", "not only" and "no doubt" negate nothing;
 * - "cannot exclude X", "X cannot be ruled out", "X not excluded" are possible findings, the
 *   hedged language the prompt asks for: they count as positive.
 * This is not the safety gate's lexicon (src/medgemma/safety-lexicon.ts): that one asks whether
 * phrasing asserts a diagnosis, this one whether a finding is reported present.
 */

export interface MatchSource {
  /** 'finding <index>' or 'impression'. */
  where: string;
  text: string;
}

export interface MentionHit {
  where: string;
  /** The sentence of the mention, at most 160 characters, as evidence in the result. */
  excerpt: string;
}

const NEGATION_BEFORE = new Set(['no', 'not', 'without', 'negative', 'absent', 'absence', 'free', 'neither', 'nor', 'never', 'none']);
const NEGATED_AFTER =
  /^(?:(?:is|are|was|were|has|have|been|be)\s+)*(?:absent|excluded|resolved|ruled out|not (?:seen|identified|present|visible|demonstrated|detected|evident|noted))\b/;
const POSSIBLE =
  /\b(?:cannot|can not|not)(?: be)?(?: entirely| completely| definitely| confidently)? (?:exclude|excluded|rule out|ruled out)\b/;
const PSEUDO = /\b(?:no (?:(?:interval|significant) )?change|not only|no doubt|without doubt)\b/g;
const CLAUSE_SPLIT = /[.;:!?\n]|\b(?:but|however|although|though|whereas|except)\b/i;

/** Lower case, "n't" spelt out, everything but letters and digits a single space. */
export function normalizeText(text: string): string {
  return text
    .toLowerCase()
    .replace(/can['’]t\b/g, 'cannot')
    .replace(/n['’]t\b/g, ' not')
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
}

function mentionRegex(label: string): RegExp | null {
  const words = normalizeText(label).split(' ').filter(Boolean);
  if (words.length === 0) return null;
  const last = words.pop()!;
  const esc = (w: string) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`\\b${[...words.map(esc), `${esc(last)}(?:e?s)?`].join(' ')}\\b`, 'g');
}

/** Whether one clause (already normalized) mentions the label present. */
function presentIn(clause: string, re: RegExp): boolean {
  const text = clause.replace(PSEUDO, ' ');
  for (const m of text.matchAll(re)) {
    const before = text.slice(0, m.index).trim().split(' ').filter(Boolean).slice(-5);
    const after = text
      .slice(m.index + m[0].length)
      .trim()
      .split(' ')
      .filter(Boolean)
      .slice(0, 4)
      .join(' ');
    const window = `${before.join(' ')} ${m[0]} ${after}`;
    if (POSSIBLE.test(window)) return true;
    if (before.some((w) => NEGATION_BEFORE.has(w))) continue;
    if (NEGATED_AFTER.test(after)) continue;
    return true;
  }
  return false;
}

/** The first source that mentions `label` present, or undefined. */
export function findMention(label: string, sources: readonly MatchSource[]): MentionHit | undefined {
  const re = mentionRegex(label);
  if (!re) return undefined;
  for (const s of sources)
    for (const clause of s.text.split(CLAUSE_SPLIT)) {
      if (clause && presentIn(normalizeText(clause), re)) return { where: s.where, excerpt: excerptOf(s.text, clause) };
    }
  return undefined;
}

function excerptOf(text: string, clause: string): string {
  const at = text.indexOf(clause);
  const start = Math.max(0, text.lastIndexOf('.', at) + 1);
  const end = text.indexOf('.', at + clause.length);
  return text
    .slice(start, end < 0 ? text.length : end + 1)
    .trim()
    .slice(0, 160);
}

/** What an analysis said, as sources a label can be found in: non-normal findings, then the impression. */
export function analysisSources(
  findings: ReadonlyArray<{ index: number; description: string; category: string | null }>,
  impression: string | null,
): MatchSource[] {
  const out: MatchSource[] = findings
    .filter((f) => f.category !== 'normal')
    .map((f) => ({ where: `finding ${f.index}`, text: f.description }));
  if (impression) out.push({ where: 'impression', text: impression });
  return out;
}
