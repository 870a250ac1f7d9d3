import { Readable } from 'node:stream';
import { MultipartRelatedReader, parseMediaType } from '../../dicomweb/multipart.js';

/** A WADO-RS multipart/related response read back into its parts (headers lower-cased). */
export interface RetrievedPart {
  headers: Record<string, string>;
  body: Buffer;
}

export async function readMultipartResponse(res: Response): Promise<{ type: string; rootType?: string; parts: RetrievedPart[] }> {
  const mt = parseMediaType(res.headers.get('content-type') ?? undefined);
  if (!mt || mt.type !== 'multipart/related' || !mt.params.boundary)
    throw new Error(`not multipart/related: ${res.headers.get('content-type')}`);
  const reader = new MultipartRelatedReader(Readable.fromWeb(res.body! as import('node:stream/web').ReadableStream), {
    boundary: mt.params.boundary,
  });
  const parts: RetrievedPart[] = [];
  for (let p = await reader.next(); p; p = await reader.next()) {
    const chunks: Buffer[] = [];
    for await (const c of p.body) chunks.push(c as Buffer);
    parts.push({ headers: p.headers, body: Buffer.concat(chunks) });
  }
  return { type: mt.type, rootType: mt.params.type, parts };
}

/** A stored blob read whole (the node's own reader). */
export { readAll as streamToBuffer } from '../../storage/read-all.js';
