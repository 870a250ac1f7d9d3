import Router from '@koa/router';
import type Koa from 'koa';
import { z } from 'zod';
import { errorMessage, RadiantError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { IMPLEMENTATION_VERSION_NAME } from '../../dicom/implementation.js';
import {
  capabilityStatement,
  checkParams,
  FHIR_JSON,
  operationOutcome,
  pageOf,
  searchset,
  type ResourceType,
  type SupportedSearch,
} from '../../fhir/bundles.js';
import {
  readDevice,
  readDiagnosticReport,
  readEndpoint,
  readImagingStudy,
  readObservation,
  readPatient,
  searchDiagnosticReports,
  searchImagingStudies,
  searchObservations,
  searchPatients,
  type FhirReadDeps,
  type FhirUrls,
  type Found,
  type SearchResult,
} from '../../fhir/read.js';
import { documentRoutes, GUARDED, secured } from '../api-doc.js';
import type { RouteDeps } from '../deps.js';
import { HttpError, httpStatusOf } from '../errors.js';
import type { AppContext, AppRouter, AppState } from '../state.js';

/**
 * FHIR R4 reads under /fhir (application/fhir+json): Patient, ImagingStudy, DiagnosticReport,
 * Observation, Device and Endpoint by id, the searches the CapabilityStatement lists, errors as
 * OperationOutcome. Reads are PHI reads: images:read and an audit row each, like the REST API.
 * The mapping is src/fhir/ (pure functions) over the catalog and the reports service.
 */

type Params = Record<string, string | string[]>;
type Search = (d: FhirReadDeps, q: Params, page: ReturnType<typeof pageOf>, urls: FhirUrls) => Promise<SearchResult>;
type Read = (
  d: FhirReadDeps,
  id: string,
  urls: FhirUrls,
) => Promise<Found<fhir4.FhirResource> | undefined> | Found<fhir4.FhirResource> | undefined;

interface TypeDef {
  read: Read;
  search?: Search;
  params: SupportedSearch['params'];
}

const TYPES: Record<string, TypeDef> = {
  Patient: {
    read: (d, id) => readPatient(d, id),
    search: (d, q, p) => searchPatients(d, q, p),
    params: [
      { name: 'identifier', type: 'token', documentation: 'Patient ID: value, or system|value (issuer: urn:oid:<OID> or our system)' },
      { name: 'name', type: 'string', documentation: 'Start of any part of the name, case-insensitive' },
      { name: 'birthdate', type: 'date', documentation: 'eq (default), ge, le, gt, lt; repeat for a range' },
    ],
  },
  ImagingStudy: {
    read: readImagingStudy,
    search: searchImagingStudies,
    params: [
      { name: 'patient', type: 'reference', documentation: 'Patient/<id>' },
      {
        name: 'identifier',
        type: 'token',
        documentation: 'urn:dicom:uid|urn:oid:<Study Instance UID>, urn:oid:<UID>, or an Accession Number',
      },
      { name: 'started', type: 'date', documentation: 'Study date; eq (default), ge, le, gt, lt' },
      { name: 'modality', type: 'token', documentation: 'A modality of a series (DCM code, e.g. CT)' },
    ],
  },
  DiagnosticReport: {
    read: readDiagnosticReport,
    search: searchDiagnosticReports,
    params: [
      { name: 'patient', type: 'reference', documentation: 'Patient/<id>' },
      { name: 'status', type: 'token', documentation: 'preliminary (AI draft), final (signed), amended; comma-separated for several' },
      { name: 'date', type: 'date', documentation: "The study's date (effectiveDateTime); eq (default), ge, le, gt, lt" },
      { name: 'study', type: 'reference', documentation: 'ImagingStudy/<Study Instance UID>' },
    ],
  },
  Observation: {
    read: (d, id) => readObservation(d, id),
    search: (d, q, p) => searchObservations(d, q, p),
    params: [
      { name: 'patient', type: 'reference', documentation: 'Patient/<id>' },
      { name: 'subject', type: 'reference', documentation: 'Patient/<id> (as patient)' },
      { name: 'derived-from', type: 'reference', documentation: 'ImagingStudy/<Study Instance UID>' },
    ],
  },
  Device: { read: (d, id) => readDevice(d, id), params: [] },
  Endpoint: { read: (_d, id, urls) => readEndpoint(id, urls), params: [] },
};

// TYPES is keyed by resource type names (a Record<string, …> so a request's type can look it up).
const SUPPORTED: SupportedSearch[] = Object.entries(TYPES).map(([type, t]) => ({ type: type as ResourceType, params: t.params }));

/** Errors of /fhir as OperationOutcome with the status the node's one mapping gives (src/http/errors.ts). */
function outcomeErrors(log: Logger): Koa.Middleware<AppState> {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const status = httpStatusOf(err);
      let message = 'internal error';
      if (err instanceof HttpError) {
        for (const [k, v] of Object.entries(err.headers ?? {})) ctx.set(k, v);
        message = err.message;
      } else if (err instanceof RadiantError && status < 500) message = err.message;
      else if (status === 503) message = 'service temporarily unavailable';
      else if (status < 500) message = errorMessage(err);
      if (status >= 500) log.error({ err: errorMessage(err), requestId: ctx.state.requestId }, 'fhir: server-side failure');
      ctx.status = status;
      ctx.type = FHIR_JSON;
      ctx.body = operationOutcome(status, message);
    }
  };
}

/** application/fhir+json unless the client accepts neither it nor JSON (406); `_format` may ask the same. */
function negotiate(ctx: AppContext): void {
  const format = ctx.query._format;
  const f = Array.isArray(format) ? format.at(-1) : format;
  if (f !== undefined && !['json', FHIR_JSON, 'application/json'].includes(f))
    throw new HttpError(406, 'not_acceptable', `_format ${f} is not supported: only JSON`);
  if (ctx.get('Accept') && !ctx.accepts(FHIR_JSON, 'application/json'))
    throw new HttpError(406, 'not_acceptable', `only ${FHIR_JSON} (or application/json) is served`);
}

function send(ctx: AppContext, resource: fhir4.FhirResource): void {
  ctx.type = FHIR_JSON;
  ctx.body = resource;
}

/** Query keys for the audit row: identifiers, codes and dates as sent, names masked. */
function auditedQuery(q: Params): Record<string, string | string[]> {
  return Object.fromEntries(Object.entries(q).map(([k, v]) => [k, k === 'name' ? '***' : v]));
}

export function fhirRoutes(deps: RouteDeps): AppRouter {
  const r = new Router<AppState>();
  const d: FhirReadDeps = { db: deps.db, node: { aeTitle: deps.config.dicom.aeTitle, institutionName: deps.config.institutionName } };
  const urlsOf = (ctx: AppContext): FhirUrls => ({ fhir: `${ctx.state.baseUrl}/fhir`, root: ctx.state.baseUrl });
  const typeOf = (ctx: AppContext): TypeDef => {
    const t = TYPES[ctx.params.type ?? ''];
    if (!t) throw new HttpError(404, 'not_found', `resource type ${ctx.params.type} is not supported (see /fhir/metadata)`);
    return t;
  };
  r.use(outcomeErrors(deps.log));

  // The capability statement describes the server and holds no data: no token, as /openapi.json.
  r.get('/fhir/metadata', (ctx) => {
    negotiate(ctx);
    send(ctx, capabilityStatement(`${ctx.state.baseUrl}/fhir`, IMPLEMENTATION_VERSION_NAME, new Date().toISOString(), SUPPORTED));
  });

  r.get('/fhir/:type', deps.security.guard('images:read', 'fhir.search', 'fhir'), async (ctx: AppContext) => {
    negotiate(ctx);
    const type = ctx.params.type!;
    const t = typeOf(ctx);
    const q = ctx.query as Params;
    if (!t.search) throw new HttpError(405, 'method_not_allowed', `${type} is read by id only`);
    checkParams(
      type,
      q,
      t.params.map((p) => p.name),
    );
    const last = (k: string) => {
      const v = q[k];
      return Array.isArray(v) ? v.at(-1) : v;
    };
    const page = pageOf({ _count: last('_count'), _offset: last('_offset') });
    const urls = urlsOf(ctx);
    const found = await t.search(d, q, page, urls);
    ctx.state.audit = {
      resourceId: type,
      ...(found.studies.length === 1 ? { studyInstanceUid: found.studies[0] } : {}),
      ...(new Set(found.patientIds).size === 1 ? { patientId: found.patientIds[0] } : {}),
      details: {
        type,
        query: auditedQuery(q),
        total: found.total,
        studies: found.studies.slice(0, 20),
        patients: [...new Set(found.patientIds)].slice(0, 20),
      },
    };
    const used = Object.entries(q)
      .filter(([k]) => k !== '_count' && k !== '_offset')
      .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x): [string, string] => [k, x]));
    send(
      ctx,
      searchset(
        urls.fhir,
        type,
        used,
        page,
        found.total,
        found.resources.map((resource) => ({ resource, fullUrl: `${urls.fhir}/${type}/${resource.id}` })),
      ),
    );
  });

  r.get('/fhir/:type/:id', deps.security.guard('images:read', 'fhir.read', 'fhir'), async (ctx: AppContext) => {
    negotiate(ctx);
    const t = typeOf(ctx);
    const id = ctx.params.id!;
    const found = await t.read(d, id, urlsOf(ctx));
    ctx.state.audit = {
      resourceId: `${ctx.params.type}/${id}`,
      ...(found?.study ? { studyInstanceUid: found.study } : {}),
      ...(found?.patientId ? { patientId: found.patientId } : {}),
      details: { type: ctx.params.type },
    };
    if (!found) throw new HttpError(404, 'not_found', `${ctx.params.type}/${id} is not known`);
    send(ctx, found.resource);
  });
  return r;
}

const fhirBody = (description: string) => ({ description, content: { [FHIR_JSON]: { schema: { type: 'object' as const } } } });
const outcome = (description: string) => fhirBody(`${description} (OperationOutcome)`);
const typeParam = z.enum(Object.keys(TYPES) as [string, ...string[]]).describe('Resource type');
documentRoutes(
  {
    method: 'get',
    path: '/fhir/metadata',
    tags: ['fhir'],
    summary: 'FHIR R4 CapabilityStatement: the resources, interactions and search parameters /fhir supports (no token needed)',
    responses: { 200: fhirBody('CapabilityStatement'), 406: outcome('Only JSON is served') },
  },
  secured('images:read', {
    method: 'get',
    path: '/fhir/{type}',
    tags: ['fhir'],
    summary: 'FHIR R4 search: a searchset Bundle with total, self and next links (_count, _offset)',
    request: { params: z.object({ type: typeParam }) },
    responses: {
      200: fhirBody('searchset Bundle'),
      400: outcome('Unsupported parameter or unreadable value'),
      ...GUARDED,
      404: outcome('Unsupported resource type'),
      405: outcome('The type is read by id only'),
    },
  }),
  secured('images:read', {
    method: 'get',
    path: '/fhir/{type}/{id}',
    tags: ['fhir'],
    summary: 'FHIR R4 read of one resource by id',
    request: { params: z.object({ type: typeParam, id: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/) }) },
    responses: { 200: fhirBody('The resource'), ...GUARDED, 404: outcome('Not found') },
  }),
);
