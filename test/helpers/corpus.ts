import fs from 'node:fs';
import path from 'node:path';

/** The shared real-data corpus (never committed): RADIANT_CORPUS, default ../shared/dicom. */
export const corpusRoot = path.resolve(process.env.RADIANT_CORPUS ?? path.join(process.cwd(), '..', 'shared', 'dicom'));

export interface CorpusEntry {
  path: string;
  absPath: string;
  bytes: number;
  modality: string;
  sopClass: string;
  transferSyntax: string;
}

let cache: CorpusEntry[] | undefined;

export function corpusManifest(): CorpusEntry[] {
  if (cache) return cache;
  const manifest = path.join(corpusRoot, 'MANIFEST.tsv');
  if (!fs.existsSync(manifest)) {
    throw new Error(`DICOM corpus not found at ${corpusRoot}: set RADIANT_CORPUS`);
  }
  const lines = fs.readFileSync(manifest, 'utf8').trim().split('\n').slice(1);
  cache = lines.map((line) => {
    const [p, bytes, , modality, sopClass, ts] = line.split('\t');
    return {
      path: p!,
      absPath: path.join(corpusRoot, p!),
      bytes: Number(bytes),
      modality: modality ?? '',
      sopClass: sopClass ?? '',
      transferSyntax: ts ?? '',
    };
  });
  return cache;
}

export function corpusDir(sub: string): CorpusEntry[] {
  return corpusManifest().filter((e) => e.path.startsWith(`${sub}/`));
}
