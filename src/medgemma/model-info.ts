/**
 * `radiant model info`: what a GGUF file is (architecture, parameters, quantization, context, for
 * a projector its type and image size, size, SHA-256), and whether a model + mmproj pair fits.
 * Refusals are ModelInfoError with a one-line reason.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkGgufFile, ModelFileError } from './llama-server.js';
import { RadiantError } from '../errors.js';
import { fileSha256, type GgufHeader, readGgufHeader } from './model-identity.js';

export class ModelInfoError extends RadiantError {
  constructor(message: string) {
    super('invalid-input', message);
    this.name = 'ModelInfoError';
  }
}

export interface GgufSummary {
  file: string;
  kind: 'model' | 'mmproj';
  architecture: string;
  name?: string;
  parameters?: number;
  quantization: string | null;
  contextLength?: number;
  embeddingLength?: number;
  projectorType?: string;
  imageSize?: number;
  patchSize?: number;
  projectionDim?: number;
  bytes: number;
  sha256: string;
}

export async function ggufSummary(file: string): Promise<GgufSummary> {
  try {
    checkGgufFile(file);
  } catch (err) {
    if (err instanceof ModelFileError)
      throw new ModelInfoError(`${file} is not a usable GGUF file: ${err.message.replace(/^model file [^:]*: /, '')}`);
    throw err;
  }
  let h: GgufHeader;
  try {
    h = await readGgufHeader(file);
  } catch (err) {
    throw new ModelInfoError(`${file} is not a readable GGUF file: ${(err as Error).message}`);
  }
  const arch = h.geometry.architecture;
  const s: GgufSummary = {
    file,
    kind: arch === 'clip' ? 'mmproj' : 'model',
    architecture: arch,
    name: h.geometry.name,
    parameters: h.parameters || undefined,
    quantization: h.quantization,
    bytes: fs.statSync(file).size,
    sha256: await fileSha256(file),
  };
  if (h.projector) {
    s.projectorType = h.projector.type;
    s.imageSize = h.projector.imageSize;
    s.patchSize = h.projector.patchSize;
    s.projectionDim = h.projector.projectionDim;
  } else {
    s.contextLength = h.contextLength;
    s.embeddingLength = h.geometry.embeddingLength;
  }
  return s;
}

/** Checks a model + projector pair: the projector is a clip file whose projection fits the model. */
export function checkPair(model: GgufSummary, mmproj: GgufSummary): void {
  if (model.kind !== 'model') throw new ModelInfoError(`${model.file} is a projector (clip), not a text model`);
  if (mmproj.kind !== 'mmproj')
    throw new ModelInfoError(
      `${mmproj.file} is a text model (${mmproj.architecture}), not an mmproj projector (general.architecture=clip)`,
    );
  if (mmproj.projectionDim !== undefined && model.embeddingLength !== undefined && mmproj.projectionDim !== model.embeddingLength) {
    throw new ModelInfoError(
      `${path.basename(mmproj.file)} projects to ${mmproj.projectionDim} dimensions but ${path.basename(model.file)} has an embedding size of ${model.embeddingLength}: they do not belong together`,
    );
  }
}

export function formatSummary(s: GgufSummary): string {
  const lines = [
    `file:            ${s.file}`,
    `kind:            ${s.kind === 'mmproj' ? 'vision projector (mmproj)' : 'text model'}`,
    `architecture:    ${s.architecture}`,
  ];
  if (s.name) lines.push(`name:            ${s.name}`);
  if (s.parameters !== undefined) lines.push(`parameters:      ${formatCount(s.parameters)} (${s.parameters})`);
  lines.push(`quantization:    ${s.quantization ?? 'unknown'}`);
  if (s.kind === 'model') {
    if (s.contextLength !== undefined) lines.push(`context length:  ${s.contextLength}`);
    if (s.embeddingLength !== undefined) lines.push(`embedding size:  ${s.embeddingLength}`);
  } else {
    lines.push(`projector type:  ${s.projectorType ?? 'unknown'}`);
    if (s.imageSize !== undefined) lines.push(`image size:      ${s.imageSize} px${s.patchSize ? ` (patch ${s.patchSize})` : ''}`);
    if (s.projectionDim !== undefined) lines.push(`projection dim:  ${s.projectionDim}`);
  }
  lines.push(`file size:       ${s.bytes} bytes (${(s.bytes / 1024 ** 2).toFixed(1)} MiB)`, `sha256:          ${s.sha256}`);
  return lines.join('\n');
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}
