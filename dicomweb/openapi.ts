import type { ResponseConfig, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { documentRoutes, E, errorResponse, GUARDED, media, secured } from '../src/http/api-doc.js';

/**
 * DICOMweb (PS3.18) and WADO-URI in the node's OpenAPI document. Their requests are DICOM, not
 * JSON bodies with zod schemas, so the paths are described here by hand: path and query
 * parameters and the media types each resource answers with (routes.ts, frames.ts, bulkdata.ts,
 * rendered.ts, wado-uri.ts register the routes themselves).
 */

const uid = (what: string) =>
  z
    .string()
    .regex(/^[0-9]+(\.[0-9]+)*$/)
    .max(64)
    .describe(`${what} UID`);
const studyParams = z.object({ study: uid('Study Instance') });
const seriesParams = studyParams.extend({ series: uid('Series Instance') });
const instanceParams = seriesParams.extend({ instance: uid('SOP Instance') });

const DICOM_JSON = 'application/dicom+json';
const MULTIPART_RELATED = 'multipart/related';
const RENDERED = ['image/jpeg', 'image/png', 'image/gif'];

const qidoQuery = z
  .object({
    limit: z.coerce.number().int().min(0).optional(),
    offset: z.coerce.number().int().min(0).optional(),
    fuzzymatching: z.enum(['true', 'false']).optional(),
    includefield: z.string().optional().describe('Attribute keywords or tags to add to the answer, or `all`'),
  })
  .catchall(z.string())
  .describe('Matching keys: attribute keywords or tags (PS3.18 §8.3.4)');

const renderQuery = z.object({
  window: z.string().optional().describe('center,width,function (linear, linear-exact, sigmoid)'),
  viewport: z.string().optional().describe('vw,vh[,sx,sy,sw,sh]'),
  quality: z.coerce.number().int().min(1).max(100).optional().describe('JPEG quality'),
});

const wadoUriQuery = z.object({
  requestType: z.literal('WADO'),
  studyUID: uid('Study Instance'),
  seriesUID: uid('Series Instance'),
  objectUID: uid('SOP Instance'),
  contentType: z.string().optional().describe('application/dicom, application/pdf, image/jpeg, image/png or image/gif'),
  transferSyntax: z.string().optional().describe('For application/dicom only'),
  anonymize: z.string().optional(),
  frameNumber: z.coerce.number().int().min(1).optional(),
  windowCenter: z.coerce.number().optional(),
  windowWidth: z.coerce.number().optional(),
  rows: z.coerce.number().int().min(1).optional(),
  columns: z.coerce.number().int().min(1).optional(),
  region: z.string().optional().describe('x1,y1,x2,y2 (fractions of the image)'),
  imageQuality: z.coerce.number().int().min(1).max(100).optional(),
  annotation: z.string().optional(),
  presentationUID: z.string().optional().describe('Not implemented: 501'),
  presentationSeriesUID: z.string().optional().describe('Not implemented: 501'),
});

const notAcceptable = { 406: E[406] };
const dicomJson = (description: string): ResponseConfig => ({
  description,
  content: { [DICOM_JSON]: { schema: { type: 'array', items: { type: 'object', description: 'A DICOM JSON data set (PS3.18 F.2)' } } } },
});

function dicomweb(permission: string, route: Omit<RouteConfig, 'tags'>): RouteConfig {
  return secured(permission, { tags: ['dicomweb'], ...route });
}

const base = '/dicom-web';
const levels = [
  { path: `${base}/studies/{study}`, params: studyParams, what: 'study' },
  { path: `${base}/studies/{study}/series/{series}`, params: seriesParams, what: 'series' },
  { path: `${base}/studies/{study}/series/{series}/instances/{instance}`, params: instanceParams, what: 'instance' },
] as const;

const stow = (path: string, params?: typeof studyParams): RouteConfig =>
  dicomweb('images:write', {
    method: 'post',
    path,
    summary: params ? 'STOW-RS: store instances of this study' : 'STOW-RS: store instances',
    request: {
      ...(params ? { params } : {}),
      body: {
        required: true,
        content: {
          [`${MULTIPART_RELATED}; type="application/dicom"`]: { schema: { type: 'string', format: 'binary' } },
          'application/dicom': { schema: { type: 'string', format: 'binary' } },
        },
      },
    },
    responses: {
      200: dicomJson('All stored (Store Instances Response Module)'),
      202: dicomJson('Some stored, or stored with warnings'),
      409: dicomJson('None stored: the FailedSOPSequence says why'),
      400: E[400],
      ...GUARDED,
      413: E[413],
      415: E[415],
    },
  });

const qido = (path: string, level: string, params?: typeof studyParams | typeof seriesParams): RouteConfig =>
  dicomweb('images:read', {
    method: 'get',
    path,
    summary: `QIDO-RS: search for ${level}`,
    request: { ...(params ? { params } : {}), query: qidoQuery },
    responses: { 200: dicomJson('The matches'), 204: { description: 'No match' }, 400: E[400], ...GUARDED },
  });

documentRoutes(
  stow(`${base}/studies`),
  stow(`${base}/studies/{study}`, studyParams),
  qido(`${base}/studies`, 'studies'),
  qido(`${base}/series`, 'series'),
  qido(`${base}/instances`, 'instances'),
  qido(`${base}/studies/{study}/series`, 'series of a study', studyParams),
  qido(`${base}/studies/{study}/instances`, 'instances of a study', studyParams),
  qido(`${base}/studies/{study}/series/{series}/instances`, 'instances of a series', seriesParams),
  ...levels.flatMap(({ path, params, what }): RouteConfig[] => [
    dicomweb('images:read', {
      method: 'get',
      path,
      summary: `WADO-RS: the ${what}'s instances`,
      request: { params },
      responses: {
        200: media('The instances', [`${MULTIPART_RELATED}; type="application/dicom"`, 'application/zip']),
        ...GUARDED,
        404: E[404],
        ...notAcceptable,
      },
    }),
    dicomweb('images:read', {
      method: 'get',
      path: `${path}/metadata`,
      summary: `WADO-RS: the ${what}'s metadata (DICOM JSON, bulk data as BulkDataURI)`,
      request: { params },
      responses: { 200: dicomJson('The metadata'), ...GUARDED, 404: E[404], ...notAcceptable },
    }),
    dicomweb('patients:delete', {
      method: 'delete',
      path,
      summary: `Delete the ${what} (not in PS3.18; as dcm4chee-arc and Orthanc)`,
      request: { params },
      responses: { 204: { description: 'Deleted' }, ...GUARDED, 404: E[404] },
    }),
    dicomweb('images:read', {
      method: 'get',
      path: `${path}/rendered`,
      summary: `WADO-RS: the ${what} rendered`,
      request: { params, query: renderQuery },
      responses: {
        200: media('The rendered image(s)', what === 'instance' ? RENDERED : [MULTIPART_RELATED]),
        ...GUARDED,
        404: E[404],
        ...notAcceptable,
      },
    }),
    dicomweb('images:read', {
      method: 'get',
      path: `${path}/thumbnail`,
      summary: `WADO-RS: a thumbnail of the ${what}`,
      request: { params, query: renderQuery },
      responses: { 200: media('The thumbnail', RENDERED), ...GUARDED, 404: E[404], ...notAcceptable },
    }),
  ]),
  dicomweb('images:read', {
    method: 'get',
    path: `${base}/studies/{study}/series/{series}/instances/{instance}/frames/{frames}`,
    summary: 'WADO-RS: frames, as stored or transcoded (PS3.18 §10.4.1.1.4)',
    request: {
      params: instanceParams.extend({
        frames: z
          .string()
          .regex(/^[0-9]+(,[0-9]+)*$/)
          .describe('Frame numbers, from 1, comma-separated'),
      }),
    },
    responses: {
      200: media('The frames', [`${MULTIPART_RELATED}; type="application/octet-stream"`, `${MULTIPART_RELATED}; type="image/jpeg"`]),
      400: E[400],
      ...GUARDED,
      404: E[404],
      ...notAcceptable,
    },
  }),
  dicomweb('images:read', {
    method: 'get',
    path: `${base}/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/rendered`,
    summary: 'WADO-RS: one frame rendered',
    request: { params: instanceParams.extend({ frame: z.coerce.number().int().min(1) }), query: renderQuery },
    responses: { 200: media('The rendered frame', RENDERED), 400: E[400], ...GUARDED, 404: E[404], ...notAcceptable },
  }),
  dicomweb('images:read', {
    method: 'get',
    path: `${base}/studies/{study}/series/{series}/instances/{instance}/bulkdata/{path}`,
    summary: 'WADO-RS: bulk data of an element (a BulkDataURI of the metadata); byte ranges supported',
    request: {
      params: instanceParams.extend({ path: z.string().describe('Tag path, e.g. 7FE00010 or 00540016/0/00181072') }),
      headers: z.object({ range: z.string().optional() }),
    },
    responses: {
      200: media('The value', [`${MULTIPART_RELATED}; type="application/octet-stream"`, 'application/octet-stream']),
      206: media('The requested byte range', ['application/octet-stream']),
      ...GUARDED,
      404: E[404],
      ...notAcceptable,
    },
  }),
  dicomweb('images:read', {
    method: 'get',
    path: '/wado',
    summary: 'WADO-URI (PS3.18 §9): one object, as stored, transcoded, rendered or its PDF',
    request: { query: wadoUriQuery },
    responses: {
      200: media('The object', ['application/dicom', 'application/pdf', ...RENDERED]),
      400: E[400],
      ...GUARDED,
      404: E[404],
      ...notAcceptable,
      501: errorResponse('Not implemented (presentation states)'),
    },
  }),
);
