import fs from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

/** STOW-RS helpers: hand-built multipart/related bodies and a raw HTTP client that copes with early answers. */

export const BOUNDARY = 'radiant-test-boundary-7d3f';

export interface Part {
  body: Buffer;
  /** Default application/dicom; null: no Content-Type header at all. */
  contentType?: string | null;
}

export function stowContentType(boundary = BOUNDARY, type: string | null = '"application/dicom"'): string {
  return `multipart/related; ${type === null ? '' : `type=${type}; `}boundary=${boundary}`;
}

function partHeader(boundary: string, contentType: string | null | undefined, first: boolean): Buffer {
  const ct = contentType === null ? '' : `Content-Type: ${contentType ?? 'application/dicom'}\r\n`;
  return Buffer.from(`${first ? '' : '\r\n'}--${boundary}\r\n${ct}\r\n`, 'latin1');
}

export function closing(boundary = BOUNDARY): Buffer {
  return Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
}

/** A whole multipart/related body in memory (small requests). */
export function multipartBody(parts: Array<Buffer | Part>, opts: { boundary?: string; close?: boolean } = {}): Buffer {
  const boundary = opts.boundary ?? BOUNDARY;
  const chunks: Buffer[] = [];
  parts.forEach((p, i) => {
    const part = Buffer.isBuffer(p) ? { body: p } : p;
    chunks.push(partHeader(boundary, part.contentType, i === 0), part.body);
  });
  if (opts.close !== false) chunks.push(closing(boundary));
  return Buffer.concat(chunks);
}

/** A multipart/related body written to a file one part at a time (large requests); returns its size. */
export async function writeMultipartFile(dest: string, files: string[], boundary = BOUNDARY): Promise<number> {
  const out = fs.createWriteStream(dest);
  let size = 0;
  const write = async (b: Buffer) => {
    size += b.length;
    if (!out.write(b)) await once(out, 'drain');
  };
  for (const [i, f] of files.entries()) {
    await write(partHeader(boundary, undefined, i === 0));
    await write(await fs.promises.readFile(f));
  }
  await write(closing(boundary));
  out.end();
  await once(out, 'finish');
  return size;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json<T = StoreResponse>(): T;
}

/**
 * POST with node:http, resolving as soon as the server answers: a server that refuses a body
 * halfway (413) may close the connection before the client has finished sending, which fetch
 * reports as a network error rather than the answer.
 */
export function rawPost(url: string, headers: Record<string, string>, body: Buffer | Readable): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined);
      const done = () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
      };
      res.on('end', done);
      res.on('aborted', done);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    }
  });
}

/** The Store Instances Response data set in the DICOM JSON model. */
export interface JsonAttr {
  vr: string;
  Value?: unknown[];
}
export type StoreResponse = Record<string, JsonAttr>;
export type Item = Record<string, JsonAttr>;

export function items(res: StoreResponse, tag: '00081199' | '00081198'): Item[] {
  return (res[tag]?.Value ?? []) as Item[];
}

export function value<T = string>(item: Item, tag: string): T | undefined {
  return item[tag]?.Value?.[0] as T | undefined;
}
