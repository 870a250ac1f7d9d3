import { Readable } from 'node:stream';
import type { RouteDeps } from '../src/http/deps.js';
import { HttpError } from '../src/http/errors.js';
import type { AppContext } from '../src/http/state.js';
import type { StoredInstanceRow } from '../src/catalog/catalog.js';
import { errorMessage } from '../src/errors.js';
import { TranscodeError } from '../src/dicom/transcoder.js';
import { whyNotTranscodable } from '../src/dicom/transcode-syntaxes.js';
import { negotiateRetrieve, retrieveSyntaxFor } from './accept.js';
import type { OutPart } from './multipart-writer.js';
import { respondMultipart } from './streamed-response.js';
import { instanceReader } from '../src/integrity/read-instance.js';
import { resolveInstances, resourcePath, resourceUrl } from './resources.js';

/**
 * WADO-RS Retrieve (PS3.18 §10.4) of a study, series or instance as
 * `multipart/related; type="application/dicom"`: one part per instance, its Content-Type naming
 * the transfer syntax it is in (`application/dicom; transfer-syntax=…`) and its Content-Location
 * the instance URL.
 *
 * Without a transfer syntax the default applies (PS3.18 §8.7.3.4, accept.ts retrieveSyntaxFor):
 * Explicit VR Little Endian, lossy and undecodable pixel data as stored. As stored (`*`, or an
 * instance already in the syntax), each part is the stored Part 10 file byte for byte, streamed from storage one after the other with backpressure (multipart-writer.ts):
 * nothing is buffered per study. Each is checked against the SHA-256 the index keeps as it flows
 * (src/integrity/read-instance.ts). The first blob is opened before the status line goes out, so a
 * missing first blob is an error status; a failure later (a blob missing or unreadable, one
 * failing its check) cuts the connection (no closing delimiter), which clients detect as a broken
 * transfer, and is logged and audited (streamed-response.ts).
 *
 * An explicit transfer syntax (accept.ts) transcodes the instances stored otherwise in worker
 * threads (src/dicom/transcoder.ts), a few ahead of the one being written, so the workers stay
 * busy while the client reads. A single instance that cannot be transcoded is a 406. In a
 * series or study, an instance whose pixel data turns out undecodable (a codec failure the
 * syntax check could not foresee) is sent as stored, its part labelled with its real transfer
 * syntax, rather than failing the whole retrieve.
 */
export function retrieveHandler(deps: RouteDeps) {
  const { db, log, transcoder } = deps;
  const blobs = instanceReader(deps);
  return async (ctx: AppContext): Promise<void> => {
    const p = resourcePath(ctx);
    ctx.state.audit = { studyInstanceUid: p.study, details: { level: p.level } };
    const instances = await resolveInstances(db, p);

    const stored = new Set(instances.map((i) => i.transfer_syntax_uid));
    const choice = negotiateRetrieve(ctx.get('accept') || undefined, stored, whyNotTranscodable);
    if (!choice.ok) {
      throw new HttpError(406, 'not_acceptable', choice.reasons[0] ?? 'no acceptable media type', { reasons: choice.reasons });
    }
    const target = choice.transferSyntax;
    /** This instance's syntax: the one asked for, or per instance under the default ('*': as stored). */
    const targetOf = (i: StoredInstanceRow) => retrieveSyntaxFor(choice, i.transfer_syntax_uid, whyNotTranscodable);
    const base = `${ctx.state.baseUrl}/dicom-web`;
    const requestId = ctx.state.requestId;
    const location = (i: StoredInstanceRow) => resourceUrl(base, i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid);
    let fellBack = 0;

    const load = (i: StoredInstanceRow) => () => blobs.readAll(i);
    /** The bytes in `target`, or as stored (and which syntax that is) when decoding failed. */
    const converted = new Map<number, Promise<{ bytes: Buffer; ts: string }>>();
    const convert = (idx: number) => {
      let p = converted.get(idx);
      if (!p) {
        const i = instances[idx]!;
        const to = targetOf(i);
        p = transcoder.cached({ sopInstanceUid: i.sop_instance_uid, sizeBytes: i.size_bytes }, i.transfer_syntax_uid, to, load(i)).then(
          (bytes) => ({ bytes, ts: to }),
          async (err: unknown) => {
            // Named syntax, one instance: 406. Under the default, a codec failure sends it as stored.
            if (!(err instanceof TranscodeError) || (instances.length === 1 && !choice.byDefault)) throw err;
            fellBack++;
            log.warn(
              { err: errorMessage(err), requestId, sopInstanceUid: i.sop_instance_uid },
              'WADO-RS: sent as stored, transcoding failed',
            );
            return { bytes: await load(i)(), ts: i.transfer_syntax_uid };
          },
        );
        // Read ahead may be abandoned (client gone): its failure must not be unhandled.
        p.catch(() => undefined);
        converted.set(idx, p);
      }
      return p;
    };
    const needsTranscode = (i: StoredInstanceRow) => {
      const to = targetOf(i);
      return to !== '*' && i.transfer_syntax_uid !== to;
    };
    const lookahead = Math.max(1, transcoder.workers);

    const parts: OutPart[] = instances.map((i, idx) => {
      if (!needsTranscode(i)) {
        return {
          headers: { 'Content-Type': `application/dicom; transfer-syntax=${i.transfer_syntax_uid}`, 'Content-Location': location(i) },
          // Checked against the indexed SHA-256 as it streams: a damaged blob fails at its last
          // chunk (held back), and the response is cut there (streamed-response.ts).
          open: () => blobs.open(i),
        };
      }
      let ts = targetOf(i);
      return {
        headers: () => ({ 'Content-Type': `application/dicom; transfer-syntax=${ts}`, 'Content-Location': location(i) }),
        open: async () => {
          for (let k = idx + 1; k < Math.min(instances.length, idx + lookahead); k++) if (needsTranscode(instances[k]!)) void convert(k);
          const out = await convert(idx);
          converted.delete(idx);
          ts = out.ts;
          return Readable.from([out.bytes]);
        },
      };
    });

    let first: Readable;
    try {
      first = await parts[0]!.open();
    } catch (err) {
      if (err instanceof TranscodeError) {
        throw new HttpError(406, 'not_acceptable', `${err.message} (ask for transfer-syntax=* to get the instance as stored)`);
      }
      throw err;
    }
    const bytes = instances.reduce((n, i) => n + i.size_bytes, 0);
    ctx.state.audit = {
      studyInstanceUid: p.study,
      details: { level: p.level, instances: instances.length, bytes, transferSyntax: choice.byDefault ? 'default' : target },
    };
    respondMultipart(deps, ctx, {
      parts,
      first,
      contentType: (boundary) => `multipart/related; type="application/dicom"; boundary=${boundary}`,
      action: 'dicomweb.retrieve',
      resourceType: p.level,
      onDone: () => {
        if (fellBack) log.info({ requestId, fellBack }, 'WADO-RS: instances sent as stored');
      },
    });
  };
}
