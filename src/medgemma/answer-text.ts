/**
 * Reading the model's raw text with bounded effort (pure, linear in the text, no backtracking
 * regular expressions): the length cap, MedGemma's `<unused94>…<unused95>` thinking block, the JSON
 * object inside fences or prose, and repetition loops. The raw text itself is never changed: these
 * functions return what to parse, the caller keeps the verbatim answer.
 */

/**
 * Answers longer than this are refused before any parsing: a schema-bound answer is a few tens of
 * kilobytes at most (max tokens × a few characters), so 1 Mi characters is a runaway generation.
 */
export const MAX_ANSWER_CHARS = 1 << 20;

/** A loop is looked for in this many characters at most (the answer's end, where loops run). */
const LOOP_WINDOW_CHARS = 64 * 1024;
/** A unit of 1..MAX_LOOP_UNIT characters repeated LOOP_REPEATS times in a row… */
const MAX_LOOP_UNIT = 64;
const LOOP_REPEATS = 8;
/** …over at least this many characters (so "11111111" in a number is not a loop). */
const LOOP_MIN_CHARS = 48;
/** Or one word this many times in a row ("the the the the the the"). */
const WORD_REPEATS = 6;

const THINK_OPEN = '<unused94>';
const THINK_CLOSE = '<unused95>';

export interface StrippedText {
  /** The text without thinking blocks, trimmed. */
  text: string;
  /** 'thinking_stripped' and/or 'thinking_unterminated'. */
  notes: Array<'thinking_stripped' | 'thinking_unterminated'>;
}

/**
 * Removes MedGemma's thinking block(s) in one pass; an unterminated one is cut to its first `{`
 * or `[` (a JSON answer that may follow inside it), or to the end of the text.
 */
export function stripThinking(text: string): StrippedText {
  const notes: StrippedText['notes'] = [];
  const parts: string[] = [];
  let at = 0;
  for (;;) {
    const start = text.indexOf(THINK_OPEN, at);
    if (start < 0) {
      parts.push(text.slice(at));
      break;
    }
    parts.push(text.slice(at, start));
    const end = text.indexOf(THINK_CLOSE, start + THINK_OPEN.length);
    if (end < 0) {
      const restAt = start + THINK_OPEN.length;
      const brace = firstOf(text, restAt, '{', '[');
      if (brace >= 0) parts.push(text.slice(brace));
      notes.push('thinking_unterminated');
      break;
    }
    if (!notes.includes('thinking_stripped')) notes.push('thinking_stripped');
    at = end + THINK_CLOSE.length;
  }
  // a stray closing tag
  return { text: parts.join('').split(THINK_CLOSE).join('').trim(), notes };
}

function firstOf(text: string, from: number, a: string, b: string): number {
  const i = text.indexOf(a, from);
  const j = text.indexOf(b, from);
  if (i < 0) return j;
  if (j < 0) return i;
  return Math.min(i, j);
}

/** True when the text holds nothing but JSON punctuation and blanks. */
export function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (!' \t\r\n{}[]"\':,'.includes(text[i]!)) return false;
  return true;
}

/**
 * The JSON text to parse: the whole text when it is JSON, else the body of a ```json (or ```)
 * fence, else the span from the first `{` to the last `}` (an object with prose around it).
 */
export function jsonCandidate(text: string): string {
  const t = text.trim();
  if (t.startsWith('{') || t.startsWith('[')) return t;
  const fence = t.indexOf('```');
  if (fence >= 0) {
    const bodyAt = t.indexOf('\n', fence);
    const close = bodyAt < 0 ? -1 : t.indexOf('```', bodyAt);
    if (bodyAt >= 0) return t.slice(bodyAt + 1, close < 0 ? undefined : close).trim();
  }
  const open = t.indexOf('{');
  const close = t.lastIndexOf('}');
  return open >= 0 && close > open ? t.slice(open, close + 1) : t;
}

/**
 * Whether the text ends in (or holds, within its last LOOP_WINDOW_CHARS characters) a repetition
 * loop: a unit of 1–64 characters repeated 8+ times over 48+ characters (whitespace runs count as
 * one space), or one word (letters) 6+ times in a row. Linear: for each unit length p, one pass counting how
 * long text[i] === text[i - p] has held.
 */
export function hasRepetitionLoop(text: string): boolean {
  const t = collapseSpaces(text.length > LOOP_WINDOW_CHARS ? text.slice(text.length - LOOP_WINDOW_CHARS) : text);
  for (let p = 1; p <= MAX_LOOP_UNIT; p++) {
    const need = Math.max(p * (LOOP_REPEATS - 1), LOOP_MIN_CHARS - p);
    let run = 0;
    for (let i = p; i < t.length; i++) {
      if (t.charCodeAt(i) === t.charCodeAt(i - p)) {
        if (++run >= need) return true;
      } else run = 0;
    }
  }
  return repeatedWord(t);
}

/** Whitespace runs as one space (a simple character class: linear, no backtracking). */
function collapseSpaces(text: string): string {
  return text.replace(/\s+/g, ' ');
}

function repeatedWord(t: string): boolean {
  let last = '';
  let count = 0;
  for (const m of t.matchAll(/\p{L}+/gu)) {
    const w = m[0].toLowerCase();
    count = w === last ? count + 1 : 1;
    last = w;
    if (count >= WORD_REPEATS) return true;
  }
  return false;
}
