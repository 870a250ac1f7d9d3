/**
 * Versioned prompt templates. A template's id and version are stored with every result, with the
 * SHA-256 of the exact text sent; change a template's text only together with its version.
 * `{{name}}` is replaced by a context value; `{{#name}}…{{/name}}` keeps the block only when the
 * value is non-empty. No names or other direct identifiers ever reach a prompt.
 */

export type AnalysisType = 'primary' | 'comparison' | 'focused';

export interface PromptTemplate {
  id: string;
  version: string;
  type: AnalysisType;
  text: string;
}

// The answer's shape follows the text (recipes.ts adds it, from the schema the grammar enforces).
const COMMON_TAIL = `Images: {{imageCount}} image(s) in the order given, numbered from 1; cite them by number in image_numbers.
Describe what is visible. Use hedged language ("suggestive of", "consistent with", "cannot exclude"); never state a definitive diagnosis.
Give each finding a confidence between 0 and 1. Report normal findings as category "normal". State in technical_limitations when image quality, coverage or the reduced number of slices limits the reading.
When a finding can be located on one image, give region: that image's number and box_2d [y0, x0, y1, x1], its top-left and bottom-right corners normalised to 0–1000 of the image; else null.
This is an AI draft for decision support; a radiologist will review, edit and sign it.`;

// The clinical indication only when a person typed it with the request (never the StudyDescription).
const INDICATION = '{{#indication}}Clinical indication: {{indication}}.\n{{/indication}}';

export const TEMPLATES: readonly PromptTemplate[] = [
  {
    id: 'radiant.primary',
    version: '2',
    type: 'primary',
    text: `Task: draft the findings of a {{modality}} examination{{#bodyPart}} of the {{bodyPart}}{{/bodyPart}}.
Patient: {{patientAge}}, {{patientSex}}.
${INDICATION}Acquisition: {{acquisition}}.
${COMMON_TAIL}`,
  },
  {
    id: 'radiant.comparison',
    version: '3',
    type: 'comparison',
    text: `Task: draft the findings of a {{modality}} examination{{#bodyPart}} of the {{bodyPart}}{{/bodyPart}} and compare it with the prior examination.
Patient: {{patientAge}}, {{patientSex}}.
${INDICATION}Acquisition: {{acquisition}}.
Prior examination: {{priorSummary}}.
{{#priorFindings}}Findings reported on the prior: {{priorFindings}}
{{/priorFindings}}{{#priorImpression}}Prior impression: {{priorImpression}}
{{/priorImpression}}{{#priorImages}}Images {{priorImages}} are from the prior examination; the others are from the current one.
{{/priorImages}}Describe changes since the prior in comparison_with_prior (new, resolved, larger, smaller, unchanged); say so when no prior findings were available.
${COMMON_TAIL}`,
  },
  {
    id: 'radiant.focused',
    version: '2',
    type: 'focused',
    text: `Task: answer a focused question about a {{modality}} examination{{#bodyPart}} of the {{bodyPart}}{{/bodyPart}}.
Patient: {{patientAge}}, {{patientSex}}.
${INDICATION}Acquisition: {{acquisition}}.
Question: {{focus}}
Restrict findings to what the question asks about.
${COMMON_TAIL}`,
  },
];
