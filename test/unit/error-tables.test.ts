import { expect } from 'chai';
import type Koa from 'koa';
import { FindFailure } from '../../dimse/find.js';
import { IdentifierError } from '../../dimse/retrieve.js';
import { dimseStatusOf, type DimseService } from '../../dimse/error-status.js';
import { MultipartError } from '../../dicomweb/multipart.js';
import { failureReasonOf } from '../../dicomweb/stow-response.js';
import { BootstrapClosedError, UserExistsError } from '../../src/auth/users.js';
import { VerifierUnavailableError } from '../../src/auth/tokens.js';
import { CorruptError, PixelDataUnavailable } from '../../src/dicom/pixel-data.js';
import { RenderError } from '../../src/dicom/render/render-types.js';
import { TranscodeError } from '../../src/dicom/transcoder.js';
import { DimseStatus, ERROR_KINDS, RadiantError } from '../../src/errors.js';
import { errorMiddleware, httpStatusOf } from '../../src/http/errors.js';
import type { AppState } from '../../src/http/state.js';
import { JobError } from '../../src/jobs/errors.js';
import type { Logger } from '../../src/logger.js';
import { QueryError } from '../../src/query/match.js';
import { PdfReportError } from '../../src/reports/pdf/errors.js';
import { SeriesMetadataError } from '../../src/volumes/series-loader.js';
import { VolumeRowError } from '../../src/volumes/volume-store.js';

const quiet = { warn() {}, error() {}, info() {} } as unknown as Logger;

/** What the HTTP edge answers for an error thrown by a route: status, `error.code`, message. */
async function answer(err: unknown): Promise<{ status: number; code: string; message: string; headers: Record<string, string> }> {
  const headers: Record<string, string> = {};
  const ctx = {
    state: { requestId: 'r' },
    set: (k: string, v: string) => (headers[k] = v),
  } as unknown as Koa.ParameterizedContext<AppState> & {
    body: { error: { code: string; message: string } };
  };
  await errorMiddleware(quiet)(ctx, () => Promise.reject(err));
  return { status: ctx.status, code: ctx.body.error.code, message: ctx.body.error.message, headers };
}

describe('unit: domain errors at the edges', () => {
  it('the HTTP table answers every kind with a 4xx or 5xx', () => {
    for (const kind of ERROR_KINDS) {
      const status = httpStatusOf(new RadiantError(kind, 'x'));
      expect(status, kind).to.be.within(400, 599);
    }
  });

  it('the DIMSE tables answer every kind of every service with a failure status', () => {
    const services: DimseService[] = ['store', 'find', 'retrieve', 'commitment'];
    for (const service of services) {
      for (const kind of ERROR_KINDS) {
        const status = dimseStatusOf(service, new RadiantError(kind, 'x'));
        expect(status, `${service} ${kind}`).to.be.a('number').and.not.equal(DimseStatus.Success);
        expect(status, `${service} ${kind}`).to.be.within(0x0100, 0xcfff);
      }
    }
  });

  it('auth conflicts answer 409 conflict, as the routes translated them by hand', async () => {
    expect(await answer(new BootstrapClosedError())).to.deep.include({
      status: 409,
      code: 'conflict',
      message: 'the first admin already exists',
    });
    expect(await answer(new UserExistsError('user alice exists'))).to.deep.include({
      status: 409,
      code: 'conflict',
      message: 'user alice exists',
    });
  });

  it("the node's own failures stay 500 internal_error with a neutral message", async () => {
    const own = [
      new SeriesMetadataError('1.2.3', 'series metadata of 1.2.3 is not JSON'),
      new VolumeRowError('1.2.3', 'unknown volume kind x'),
      new CorruptError('short read at byte 12'),
      new PdfReportError('PDF rendering failed'),
      new JobError('failed', { retryable: false }),
      new RenderError('failed', 'rendering failed: trap'),
    ];
    for (const err of own) {
      expect(await answer(err), err.name).to.deep.include({ status: 500, code: 'internal_error', message: 'internal error' });
    }
  });

  it('a failed user lookup stays 503 service_unavailable with Retry-After', async () => {
    const a = await answer(new VerifierUnavailableError(new Error('connection refused')));
    expect(a).to.deep.include({ status: 503, code: 'service_unavailable' });
    expect(a.headers).to.have.property('Retry-After');
  });

  it('no pixel data answers 404 not_found by the table', async () => {
    expect(await answer(new PixelDataUnavailable('not-found', 'the instance has no Pixel Data'))).to.deep.include({
      status: 404,
      code: 'not_found',
      message: 'the instance has no Pixel Data',
    });
  });

  it('render, transcode and multipart errors keep their finer reason and have a kind', () => {
    const r = new RenderError('frame_out_of_range', 'frame 9 of 3', 3);
    expect(r).to.be.instanceOf(RadiantError);
    expect([r.kind, r.reason, r.numberOfFrames]).to.deep.equal(['not-found', 'frame_out_of_range', 3]);
    expect(new RenderError('invalid_geometry', 'x').kind).to.equal('unprocessable');
    expect(new TranscodeError('cannot transcode').kind).to.equal('unsupported');
    const m = new MultipartError('too-large', 'too large');
    expect([m.kind, m.reason]).to.deep.equal(['too-large', 'too-large']);
    expect(new MultipartError('truncated', 'x').kind).to.equal('unparseable');
  });

  it('C-FIND: identifier 0xA900, SOP class 0x0122, a refused query value or anything else 0xC000', () => {
    expect(dimseStatusOf('find', new FindFailure('mismatch', 'x'))).to.equal(0xa900);
    expect(dimseStatusOf('find', new FindFailure('unsupported', 'x'))).to.equal(0x0122);
    expect(dimseStatusOf('find', new QueryError('bad range'))).to.equal(0xc000);
    expect(dimseStatusOf('find', new Error('db down'))).to.equal(0xc000);
  });

  it('C-MOVE/C-GET: an identifier that does not fit is 0xA900, the rest 0xC000', () => {
    expect(dimseStatusOf('retrieve', new IdentifierError('PatientID is required'))).to.equal(0xa900);
    expect(dimseStatusOf('retrieve', new TranscodeError('x'))).to.equal(0xc000);
    expect(dimseStatusOf('retrieve', new Error('x'))).to.equal(0xc000);
  });

  it('Storage Commitment N-ACTION: no such action, invalid instance, invalid argument, processing failure', () => {
    expect(dimseStatusOf('commitment', new RadiantError('unsupported', 'x'))).to.equal(0x0123);
    expect(dimseStatusOf('commitment', new RadiantError('not-found', 'x'))).to.equal(0x0117);
    expect(dimseStatusOf('commitment', new RadiantError('invalid-input', 'x'))).to.equal(0x0115);
    expect(dimseStatusOf('commitment', new Error('x'))).to.equal(0x0110);
  });

  it("C-STORE and STOW-RS answer the node's own failures as before (Out of Resources, Processing Failure)", () => {
    for (const err of [new CorruptError('x'), new SeriesMetadataError('1', 'x'), new Error('x')]) {
      expect(dimseStatusOf('store', err)).to.equal(0xa700);
      expect(failureReasonOf(err)).to.equal(0x0110);
    }
  });
});
