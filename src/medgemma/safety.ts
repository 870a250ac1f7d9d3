/**
 * The safety layer around every MedGemma call (pure functions):
 * - SYSTEM_PROMPT, always sent: a decision-support tool that describes and hedges, never diagnoses;
 * - postCheck(text): strips a `<unused94>…<unused95>` thinking block, flags empty or degenerate
 *   (looping) output, and rewrites definitive diagnostic phrasing into hedged wording, listing
 *   what it changed as flags.
 */

export const SYSTEM_PROMPT = [
  'You are a decision-support tool for radiologists, not a diagnostician.',
  'Describe the imaging findings you see; do not state a diagnosis.',
  'Use hedged language: "suggestive of", "consistent with", "cannot exclude", "may represent".',
  'Never write "the diagnosis is", "confirms", "definitely", "is diagnostic of" or "rules out".',
  'Give a confidence (low, moderate or high) for every finding.',
  'If image quality, positioning, artefacts or missing views limit the reading, say so explicitly.',
  'Your output is an AI-generated draft that a radiologist will review before any clinical use.',
  'Answer only with JSON matching the requested schema.',
].join(' ');

export interface SafetyCheck {
  text: string;
  flags: string[];
}

/** Definitive phrasing -> hedged replacement; the flag names the phrase. Order matters (longer first). */
export const HEDGE_RULES: ReadonlyArray<{ pattern: RegExp; replacement: string; flag: string }> = [
  { pattern: /\bthe (?:final |definitive )?diagnosis is\b/gi, replacement: 'the findings are suggestive of', flag: 'diagnosis is' },
  { pattern: /\b(?:final |definitive )?diagnosis is\b/gi, replacement: 'findings are suggestive of', flag: 'diagnosis is' },
  { pattern: /\bis (?:pathognomonic|diagnostic) (?:of|for)\b/gi, replacement: 'is suggestive of', flag: 'is diagnostic of' },
  { pattern: /\b(?:pathognomonic|diagnostic) (?:of|for)\b/gi, replacement: 'suggestive of', flag: 'is diagnostic of' },
  { pattern: /\bconfirms\b/gi, replacement: 'is consistent with', flag: 'confirms' },
  { pattern: /\bconfirmed\b/gi, replacement: 'suggested', flag: 'confirmed' },
  { pattern: /\bconfirming\b/gi, replacement: 'suggesting', flag: 'confirms' },
  { pattern: /\brules out\b/gi, replacement: 'makes less likely', flag: 'rules out' },
  { pattern: /\bruled out\b/gi, replacement: 'considered less likely', flag: 'rules out' },
  { pattern: /\b(?:definitely|certainly|undoubtedly|unequivocally|definitively)\b/gi, replacement: 'likely', flag: 'definitely' },
  { pattern: /\bwithout (?:any )?doubt\b/gi, replacement: 'likely', flag: 'definitely' },
  { pattern: /\bis definitive for\b/gi, replacement: 'is suggestive of', flag: 'is diagnostic of' },
];

const THINK_OPEN = '<unused94>';
const THINK_CLOSE = '<unused95>';

/** Removes MedGemma's thinking block(s); an unterminated one is cut to the end of the text. */
export function stripThinking(text: string): SafetyCheck {
  const flags: string[] = [];
  let out = text;
  for (;;) {
    const start = out.indexOf(THINK_OPEN);
    if (start < 0) break;
    const end = out.indexOf(THINK_CLOSE, start);
    if (end < 0) {
      // unterminated: keep a JSON answer that may follow inside it
      const rest = out.slice(start + THINK_OPEN.length);
      const brace = rest.search(/[{[]/);
      out = out.slice(0, start) + (brace >= 0 ? rest.slice(brace) : '');
      flags.push('thinking_unterminated');
      break;
    }
    out = out.slice(0, start) + out.slice(end + THINK_CLOSE.length);
    if (!flags.includes('thinking_stripped')) flags.push('thinking_stripped');
  }
  // a stray closing tag
  if (out.includes(THINK_CLOSE)) out = out.split(THINK_CLOSE).join('');
  return { text: out.trim(), flags };
}

/** Flags empty output and token loops (a unit of 1-40 characters repeated 8+ times in a row, or one word 6+ times). */
export function degenerateFlags(text: string): string[] {
  const t = text.trim();
  if (t === '' || /^[{}[\]\s"':,]*$/.test(t)) return ['empty_output'];
  if (/(.{1,40}?)\1{7,}/s.test(t.replace(/\s+/g, ' '))) return ['repetition_loop'];
  if (/\b(\w+)(?:\W+\1\b){5,}/i.test(t)) return ['repetition_loop'];
  return [];
}

/** Rewrites definitive diagnostic phrasing into hedged wording. */
export function hedge(text: string): SafetyCheck {
  const flags = new Set<string>();
  let out = text;
  for (const rule of HEDGE_RULES) {
    out = out.replace(rule.pattern, (m) => {
      flags.add(`definitive:${rule.flag}`);
      return matchCase(m, rule.replacement);
    });
  }
  return { text: out, flags: [...flags] };
}

function matchCase(original: string, replacement: string): string {
  return /^[A-Z]/.test(original) ? replacement[0]!.toUpperCase() + replacement.slice(1) : replacement;
}

/** The full post-check: thinking block, degenerate output, definitive phrasing. */
export function postCheck(text: string): SafetyCheck {
  const thought = stripThinking(text);
  const degenerate = degenerateFlags(thought.text);
  const hedged = hedge(thought.text);
  return { text: hedged.text, flags: [...thought.flags, ...degenerate, ...hedged.flags] };
}
