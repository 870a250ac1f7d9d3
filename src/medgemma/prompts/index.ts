import { createHash } from 'node:crypto';
import { TEMPLATES, type AnalysisType, type PromptTemplate } from './templates.js';
import { RadiantError } from '../../errors.js';

export type { AnalysisType, PromptTemplate } from './templates.js';

export interface PromptContext {
  modality: string;
  bodyPart?: string;
  patientAge: string;
  patientSex: string;
  /** What the requesting person typed; absent: the prompt says nothing of an indication. */
  indication?: string;
  acquisition: string;
  imageCount: number;
  focus?: string;
  priorSummary?: string;
  /** Which of the images are the prior's, e.g. "85-100". */
  priorImages?: string;
  priorFindings?: string;
  priorImpression?: string;
}

export interface BuiltPrompt {
  text: string;
  templateId: string;
  templateVersion: string;
  /** SHA-256 (hex) of the exact text sent. */
  hash: string;
}

/** The analysis cannot be put as a prompt (no template, a value missing): retrying cannot help. */
export class PromptError extends RadiantError {
  constructor(message: string) {
    super('invalid-input', message);
    this.name = 'PromptError';
  }
}

export function templateFor(type: AnalysisType): PromptTemplate {
  const t = TEMPLATES.find((x) => x.type === type);
  if (!t) throw new PromptError(`no prompt template for analysis type ${type}`);
  return t;
}

/** Prompt text is one line per value: newlines or braces in context values must not add structure. */
function clean(v: string): string {
  return v
    .replace(/[\r\n]+/g, ' ')
    .replace(/[{}]/g, '')
    .trim();
}

export function renderTemplate(text: string, ctx: Record<string, string | number | undefined>): string {
  const value = (k: string): string => {
    const v = ctx[k];
    return v === undefined ? '' : clean(String(v));
  };
  const withBlocks = text.replace(/\{\{#(\w+)\}\}([\s\S]*?)\{\{\/\1\}\}/g, (_m, k: string, body: string) => (value(k) ? body : ''));
  return withBlocks.replace(/\{\{(\w+)\}\}/g, (_m, k: string) => {
    if (!(k in ctx) || ctx[k] === undefined) throw new PromptError(`prompt value ${k} is missing`);
    return value(k);
  });
}

export function buildPrompt(type: AnalysisType, ctx: PromptContext): BuiltPrompt {
  const t = templateFor(type);
  if (type === 'focused' && !ctx.focus) throw new PromptError('a focused analysis needs a focus question');
  if (type === 'comparison' && !ctx.priorSummary) throw new PromptError('a comparison analysis needs a prior study');
  const values: Record<string, string | number | undefined> = { ...ctx };
  const text = renderTemplate(t.text, values);
  return { text, templateId: t.id, templateVersion: t.version, hash: createHash('sha256').update(text).digest('hex') };
}

/** DICOM Age String (e.g. "064Y") or an age from birth date and study date; never the dates themselves. */
export function describeAge(patientAge: string | undefined, birthDate: string | undefined, studyDate: string | undefined): string {
  const m = /^(\d{3})([DWMY])$/.exec(patientAge ?? '');
  if (m) {
    const unit = { D: 'day', W: 'week', M: 'month', Y: 'year' }[m[2] as 'D' | 'W' | 'M' | 'Y'];
    const n = Number(m[1]);
    return `${n}-${unit}-old`;
  }
  if (birthDate && studyDate && /^\d{8}$/.test(birthDate) && /^\d{8}$/.test(studyDate)) {
    const y = Number(studyDate.slice(0, 4)) - Number(birthDate.slice(0, 4));
    const beforeBirthday = studyDate.slice(4) < birthDate.slice(4);
    const years = y - (beforeBirthday ? 1 : 0);
    if (years >= 0 && years < 150) return `${years}-year-old`;
  }
  return 'age unknown';
}

export function describeSex(sex: string | undefined): string {
  return sex === 'M' ? 'male' : sex === 'F' ? 'female' : sex === 'O' ? 'other' : 'sex unknown';
}
