/**
 * The phrasing rules of the safety gate (pure): a lexicon of definitive-diagnosis phrases and of
 * certainty words, with NegEx/ConText-style context so that negated ("not diagnostic of", "cannot
 * be ruled out", "no definite"), hypothetical ("to rule out", "should be confirmed") and hedged
 * ("the most likely diagnosis is") uses are not flagged. The text is never changed: scanPhrasing
 * only says where a rule hit.
 *
 * How context is decided, for each trigger match (overlapping matches: the longest wins):
 * - its clause is the text since the last boundary (. ; : ! ? , newline, brackets, or "but",
 *   "however", "although", "though", "whereas", "except", "yet") and up to the next one;
 * - pseudo-negations ("no doubt", "without doubt", "not only", "no change") are removed first;
 * - negated when a negation cue (no, not, -n't, cannot, without, never, neither, nor, absent,
 *   negative, unable, fails, lack, none, non) is among the 5 words before it in the clause, or, for
 *   adjectives and labels ("definite", "diagnosis:"), among the 3 words after ("definite fracture
 *   is not seen", "diagnosis: uncertain");
 * - hypothetical when a conditional cue (if, unless, until, whether, should, could, would, may,
 *   might, can, recommend, consider, pending, awaiting, needs, requires, further, additional) is
 *   among the 5 words before, "to" among the 3 before ("to rule out", "to be confirmed"), a bare
 *   verb opens the clause ("Rule out PE."), or, for adjectives and labels, "recommended" /
 *   "required"… follows within 6 words;
 * - hedged when a hedge word (likely, probable, possible, presumed, suspected, differential,
 *   provisional, working, favoured, almost, nearly, virtually, perhaps…) is among the 3 words
 *   before, or, for adjectives and labels, right after ("the diagnosis is likely…").
 * Adverbs ("definitely not a fracture") are not negated by what follows them: that is certainty.
 */

/** The rule classes the lexicon raises (the `rule` of a safety flag). */
export type PhrasingRule = 'definitive_diagnosis' | 'certainty';

export interface PhrasingHit {
  rule: PhrasingRule;
  /** The words as they occur in the text. */
  phrase: string;
  /** Offsets in the text. */
  start: number;
  end: number;
}

interface Trigger {
  rule: PhrasingRule;
  pattern: RegExp;
  /** An adjective or label: what follows it can negate or hedge it. */
  post?: boolean;
  /** A bare verb ("rule out", "exclude"): at a clause's start it is a request, not a statement. */
  bare?: RegExp;
  /** Not a trigger when followed by this ("excluded from the field of view"). */
  notBefore?: RegExp;
}

const D = 'definitive_diagnosis' as const;
const C = 'certainty' as const;

const TRIGGERS: readonly Trigger[] = [
  { rule: D, pattern: /\b(?:the\s+)?(?:(?:final|definitive)\s+)?diagnos[ie]s\s+(?:is|are)\b/gi, post: true },
  { rule: D, pattern: /\b(?:(?:final|definitive)\s+)?diagnos[ie]s(?:\s*:|\s+[-–—])/gi, post: true },
  { rule: D, pattern: /\b(?:is|are|was|were)\s+diagnosed\b|\bdiagnosed\s+(?:as|with)\b/gi },
  {
    rule: D,
    // "the diagnosis of X is established": X bounded to 60 word characters (no runaway backtracking)
    pattern:
      /\b(?:establish(?:es|ed)?\s+(?:the\s+|a\s+)?diagnosis|diagnosis\s+(?:of\s+[\w\s-]{1,60}?\s+)?(?:is\s+|was\s+)?(?:established|made))\b/gi,
  },
  { rule: D, pattern: /\bpathognomonic(?:\s+(?:of|for))?\b|\b(?:diagnostic|conclusive|definitive)\s+(?:of|for)\b/gi },
  { rule: D, pattern: /\bconfirm(?:s|ed|ing)\b/gi },
  {
    rule: D,
    pattern: /\b(?:biopsy|histologically|pathologically|histology|tissue|cytology)[-\s]+(?:proven|confirmed)\b|\bprov(?:es|en)\b/gi,
  },
  { rule: D, pattern: /\bproof\s+of\b/gi },
  { rule: D, pattern: /\b(?:consistent|compatible)\s+only\s+with\b|\bonly\s+(?:consistent|compatible)\s+with\b/gi },
  { rule: D, pattern: /\bcan\s+only\s+(?:represent|be\s+an?)\b|\bmust\s+represent\b/gi },
  // "X is definitely a…" names what X is; "is definitely enlarged" and "there is definitely a…" are
  // certainty (the adverb rule).
  {
    rule: D,
    pattern: /(?<!\bthere\s+)\b(?:is|are)\s+(?:definitely|certainly|undoubtedly|unequivocally)\s+(?:an?|the|those|that)\b/gi,
  },
  {
    rule: C,
    pattern:
      /\b(?:definitely|certainly|undoubtedly|unequivocally|unquestionably|indisputably|incontrovertibly|definitively|conclusively|absolutely)\b/gi,
  },
  {
    rule: C,
    pattern: /\b(?:definite|definitive|unequivocal|undoubted|unquestionable|indisputable|incontrovertible|conclusive)\b/gi,
    post: true,
  },
  {
    rule: C,
    pattern:
      /\bwith\s+(?:(?:absolute|complete|full|total)\s+)?certainty\b|\b(?:absolute|complete)\s+certainty\b|\b(?:is|are)\s+certain\b|\b100\s*%\s+(?:certain|sure|confident)\b/gi,
  },
  { rule: C, pattern: /\b(?:without|beyond)\s+(?:a\s+|any\s+|reasonable\s+)?doubt\b|\bno\s+doubt\b|\bno\s+question\s+(?:that|of)\b/gi },
  { rule: C, pattern: /\brul(?:e|es|ed|ing)\s+out\b/gi, bare: /^rule\s/i },
  { rule: C, pattern: /\bexclud(?:e|es|ed)\b/gi, bare: /^exclude$/i, notBefore: /^\s*from\b/i },
];

const BOUNDARY_CHARS = '.;:!?,\n()[]';
const BOUNDARY_WORDS = /\b(?:but|however|although|though|whereas|except|yet)\b/gi;
/** How far a clause reaches, in characters, either side of a trigger (bounds the work per hit). */
const CLAUSE_REACH = 200;

const NEGATION = new Set([
  'no',
  'not',
  'cannot',
  'without',
  'never',
  'neither',
  'nor',
  'absent',
  'absence',
  'negative',
  'unable',
  'fail',
  'fails',
  'failed',
  'lack',
  'lacks',
  'lacking',
  'none',
  'non',
  'insufficient',
]);
const NEGATION_AFTER = new Set([
  ...NEGATION,
  'uncertain',
  'unclear',
  'indeterminate',
  'impossible',
  'undetermined',
  'pending',
  'deferred',
  'unknown',
]);
const HYPOTHETICAL = new Set([
  'if',
  'unless',
  'until',
  'whether',
  'should',
  'could',
  'would',
  'may',
  'might',
  'can',
  'recommend',
  'recommended',
  'recommends',
  'consider',
  'considered',
  'pending',
  'await',
  'awaiting',
  'need',
  'needs',
  'needed',
  'require',
  'requires',
  'required',
  'further',
  'additional',
  'help',
  'helps',
  'attempt',
]);
const HYPOTHETICAL_AFTER = new Set(['recommended', 'advised', 'required', 'requires', 'needed', 'warranted', 'suggested', 'pending']);
const HEDGE = new Set([
  'likely',
  'probable',
  'probably',
  'possible',
  'possibly',
  'presumed',
  'presumably',
  'presumptive',
  'suspected',
  'differential',
  'provisional',
  'working',
  'favour',
  'favor',
  'favoured',
  'favored',
  'leading',
  'tentative',
  'almost',
  'nearly',
  'virtually',
  'perhaps',
  'suggestive',
]);

function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z]+(?:'[a-z]+)?|\d+%?/g) ?? [];
}

/** Removes pseudo-negations: negation words that negate nothing after them. */
function dropPseudoNegations(ws: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < ws.length; i++) {
    const w = ws[i]!;
    const next = ws[i + 1];
    if ((w === 'no' || w === 'without' || w === 'beyond') && next === 'doubt') i++;
    else if (w === 'not' && next === 'only') i++;
    else if (w === 'no' && (next === 'change' || ((next === 'interval' || next === 'significant') && ws[i + 2] === 'change'))) i += 1;
    else out.push(w);
  }
  return out;
}

const isNegation = (w: string) => NEGATION.has(w) || w.endsWith("n't");

/** The clause around [start, end): from the last boundary before to the next one after. */
function clause(text: string, start: number, end: number): { before: string; after: string } {
  let from = Math.max(0, start - CLAUSE_REACH);
  for (let i = start - 1; i >= from; i--)
    if (BOUNDARY_CHARS.includes(text[i]!)) {
      from = i + 1;
      break;
    }
  let to = Math.min(text.length, end + CLAUSE_REACH);
  for (let i = end; i < to; i++)
    if (BOUNDARY_CHARS.includes(text[i]!)) {
      to = i;
      break;
    }
  let before = text.slice(from, start);
  let cutAt = 0;
  for (const m of before.matchAll(BOUNDARY_WORDS)) cutAt = m.index + m[0].length;
  before = before.slice(cutAt);
  let after = text.slice(end, to);
  const cut = after.search(BOUNDARY_WORDS);
  if (cut >= 0) after = after.slice(0, cut);
  return { before, after };
}

type Context = 'asserted' | 'negated' | 'hypothetical' | 'hedged';

function contextOf(t: Trigger, text: string, start: number, end: number): Context {
  const { before, after } = clause(text, start, end);
  const pre = dropPseudoNegations(words(before));
  const last = (n: number) => pre.slice(Math.max(0, pre.length - n));
  const post = words(after);
  if (last(5).some(isNegation)) return 'negated';
  if (t.post && post.slice(0, 3).some((w) => NEGATION_AFTER.has(w) || w.endsWith("n't"))) return 'negated';
  if (last(5).some((w) => HYPOTHETICAL.has(w)) || last(3).includes('to')) return 'hypothetical';
  if (t.bare && pre.length === 0 && t.bare.test(text.slice(start, end))) return 'hypothetical';
  if (t.post && post.slice(0, 6).some((w) => HYPOTHETICAL_AFTER.has(w))) return 'hypothetical';
  if (last(3).some((w) => HEDGE.has(w))) return 'hedged';
  if (t.post && post.slice(0, 2).some((w) => HEDGE.has(w))) return 'hedged';
  return 'asserted';
}

/** The definitive and certainty phrasing asserted in one text, in text order. */
export function scanPhrasing(text: string): PhrasingHit[] {
  const found: Array<PhrasingHit & { trigger: Trigger }> = [];
  for (const trigger of TRIGGERS)
    for (const m of text.matchAll(trigger.pattern)) {
      const start = m.index;
      const end = start + m[0].length;
      if (trigger.notBefore?.test(text.slice(end, end + 20))) continue;
      found.push({ rule: trigger.rule, phrase: m[0], start, end, trigger });
    }
  // Overlaps: the longest of a run of overlapping matches wins (one sweep, n log n); its context
  // decides for the whole span.
  found.sort((a, b) => a.start - b.start || b.end - b.start - (a.end - a.start));
  const kept: typeof found = [];
  for (const f of found) {
    const last = kept[kept.length - 1];
    if (!last || f.start >= last.end) kept.push(f);
    else if (f.end - f.start > last.end - last.start) kept[kept.length - 1] = f;
  }
  return kept
    .filter((k) => contextOf(k.trigger, text, k.start, k.end) === 'asserted')
    .map(({ rule, phrase, start, end }) => ({ rule, phrase, start, end }));
}
