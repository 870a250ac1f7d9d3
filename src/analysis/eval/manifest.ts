import path from 'node:path';
import { z } from 'zod';
import { TEMPLATES, type AnalysisType } from '../../medgemma/prompts/templates.js';

/**
 * The `radiant eval` manifest: JSON lines, one study a line, e.g.
 *   {"study": "ct/chest-01", "labels": {"pneumothorax": true, "pleural effusion": false}}
 *   {"studyInstanceUid": "1.2.3.4", "labels": {"nodule": true}, "findings": ["nodule"], "prompt": "focused", "focus": "nodule?"}
 * `study` (a file or folder of DICOM, or a list of them; relative to the manifest's folder) is
 * imported first; `studyInstanceUid` names a study already in the node. Blank lines are skipped.
 */

const ANALYSIS_TYPES = TEMPLATES.map((t) => t.type) as [AnalysisType, ...AnalysisType[]];

const nonEmpty = z.string().trim().min(1);

const line = z
  .strictObject({
    /** A name for the study in the table and the result (default: "line N"). */
    id: nonEmpty.max(200).optional(),
    study: z.union([nonEmpty, z.array(nonEmpty).min(1)]).optional(),
    studyInstanceUid: z
      .string()
      .regex(/^[0-9]+(\.[0-9]+)*$/, 'a DICOM UID (digits and dots)')
      .max(64)
      .optional(),
    labels: z
      .record(nonEmpty.max(200), z.boolean({ error: 'each label is true (present) or false (absent)' }))
      .refine((l) => Object.keys(l).length > 0, 'at least one label'),
    /** Findings the reading should mention (descriptions or labels), reported as found or missed. */
    findings: z.array(nonEmpty.max(400)).optional(),
    // The analysis type, or its template's id ("radiant.focused").
    prompt: z
      .preprocess(
        (v) => TEMPLATES.find((t) => t.id === v)?.type ?? v,
        z.enum(ANALYSIS_TYPES, { error: `one of ${ANALYSIS_TYPES.join(', ')}` }),
      )
      .optional(),
    focus: nonEmpty.max(1000).optional(),
    indication: nonEmpty.max(1000).optional(),
  })
  .refine((l) => (l.study === undefined) !== (l.studyInstanceUid === undefined), {
    error: 'give either "study" (files to import) or "studyInstanceUid" (a study in the node), not both',
    path: ['study'],
  })
  .refine((l) => l.prompt !== 'focused' || l.focus !== undefined, { error: 'a "focused" prompt needs "focus"', path: ['focus'] });

export interface EvalCase {
  /** 1-based line of the manifest. */
  line: number;
  id: string;
  /** Absolute paths to import, or undefined when the study is already in the node. */
  paths?: string[];
  studyInstanceUid?: string;
  labels: Record<string, boolean>;
  findings: string[];
  analysisType: AnalysisType;
  focus?: string;
  indication?: string;
}

export class ManifestError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ManifestError';
  }
}

/** At most this many problems are listed: a wrong file says so in its first lines. */
const MAX_PROBLEMS = 20;

/**
 * Reads the manifest text (`name` prefixes each problem, `baseDir` resolves relative paths).
 * Throws ManifestError listing every bad line as "<name>:<line>: <field>: <problem>".
 */
export function parseManifest(text: string, name: string, baseDir: string): EvalCase[] {
  const cases: EvalCase[] = [];
  const problems: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length && problems.length < MAX_PROBLEMS; i++) {
    const raw = lines[i]!.trim();
    if (raw === '') continue;
    const at = `${name}:${i + 1}`;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (err) {
      problems.push(`${at}: not JSON (${err instanceof Error ? err.message : String(err)})`);
      continue;
    }
    const parsed = line.safeParse(json);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field = issue.path.length ? `${issue.path.join('.')}: ` : '';
        problems.push(`${at}: ${field}${issue.message}`);
      }
      continue;
    }
    const l = parsed.data;
    const study = l.study === undefined ? undefined : Array.isArray(l.study) ? l.study : [l.study];
    cases.push({
      line: i + 1,
      id: l.id ?? `line ${i + 1}`,
      ...(study ? { paths: study.map((p) => path.resolve(baseDir, p)) } : {}),
      ...(l.studyInstanceUid ? { studyInstanceUid: l.studyInstanceUid } : {}),
      labels: l.labels,
      findings: l.findings ?? [],
      analysisType: l.prompt ?? 'primary',
      ...(l.focus ? { focus: l.focus } : {}),
      ...(l.indication ? { indication: l.indication } : {}),
    });
  }
  if (problems.length) throw new ManifestError(problems.slice(0, MAX_PROBLEMS));
  if (cases.length === 0) throw new ManifestError([`${name}: no study (one JSON object a line)`]);
  return cases;
}
