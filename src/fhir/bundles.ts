import { RadiantError } from '../errors.js';

/**
 * FHIR's envelopes, pure: searchset Bundles with total and paging links, OperationOutcome for
 * errors, the CapabilityStatement of what /fhir serves, and the parsing of the search
 * parameters it supports (dates with prefixes, tokens, references).
 */

export const FHIR_JSON = 'application/fhir+json';

/** A search parameter the node does not support, or a value it cannot read: 400 with an OperationOutcome. */
export class FhirSearchError extends RadiantError {
  constructor(message: string) {
    super('invalid-input', message, { code: 'invalid_search' });
    this.name = 'FhirSearchError';
  }
}

const ISSUE_CODE: Record<number, fhir4.OperationOutcomeIssue['code']> = {
  400: 'invalid',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  406: 'not-supported',
  409: 'conflict',
  410: 'deleted',
  422: 'processing',
  503: 'transient',
};

export function operationOutcome(status: number, message: string): fhir4.OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: status >= 500 ? 'fatal' : 'error', code: ISSUE_CODE[status] ?? 'exception', diagnostics: message }],
  };
}

export interface Page {
  count: number;
  offset: number;
}

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 200;

/** _count and _offset (the next link's), within bounds. */
export function pageOf(q: Record<string, string | undefined>): Page {
  const int = (name: string, v: string | undefined, min: number, max: number, dflt: number) => {
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v)) throw new FhirSearchError(`${name} must be a non-negative integer`);
    return Math.min(max, Math.max(min, Number(v)));
  };
  return { count: int('_count', q._count, 0, MAX_COUNT, DEFAULT_COUNT), offset: int('_offset', q._offset, 0, 1e9, 0) };
}

/**
 * A searchset Bundle: `self` names the search as understood (the parameters used and the
 * page), `next` the following page while there is one.
 */
export function searchset(
  baseUrl: string,
  type: string,
  params: Array<[string, string]>,
  page: Page,
  total: number,
  resources: Array<{ resource: fhir4.FhirResource; fullUrl: string; mode?: 'match' | 'include' }>,
): fhir4.Bundle {
  const link = (offset: number) => {
    const q = new URLSearchParams([
      ...params,
      ['_count', String(page.count)],
      ...(offset ? [['_offset', String(offset)] as [string, string]] : []),
    ]);
    return `${baseUrl}/${type}?${q.toString()}`;
  };
  const next = page.offset + page.count;
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total,
    link: [
      { relation: 'self', url: link(page.offset) },
      ...(page.count > 0 && next < total ? [{ relation: 'next', url: link(next) }] : []),
    ],
    entry: resources.map((r) => ({ fullUrl: r.fullUrl, resource: r.resource, search: { mode: r.mode ?? 'match' } })),
  };
}

/** Only these parameters (and _count, _offset, _format) are accepted per type; anything else is refused by name. */
export function checkParams(type: string, q: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(q)) {
    if (k === '_count' || k === '_offset' || k === '_format') continue;
    if (!allowed.includes(k))
      throw new FhirSearchError(`${type} search parameter "${k}" is not supported (supported: ${allowed.join(', ')})`);
  }
}

/** A date search value as an inclusive DICOM DA range. Prefixes eq (default), ge, le, gt, lt; a year or month as its whole span. */
export interface DateRange {
  from?: string;
  to?: string;
}

function shiftDay(da: string, days: number): string {
  const d = new Date(Date.UTC(Number(da.slice(0, 4)), Number(da.slice(4, 6)) - 1, Number(da.slice(6, 8)) + days));
  return d.toISOString().slice(0, 10).replaceAll('-', '');
}

export function parseDate(name: string, raw: string): DateRange {
  const m = /^(eq|ge|le|gt|lt)?(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?$/.exec(raw.trim());
  if (!m) throw new FhirSearchError(`${name}: "${raw}" is not a FHIR date (e.g. 2024-05-01, ge2024-05-01, le2024-05)`);
  const [, prefix = 'eq', y, mo, d] = m;
  const month = mo ? Number(mo) : undefined;
  if (month !== undefined && (month < 1 || month > 12)) throw new FhirSearchError(`${name}: month out of range in "${raw}"`);
  const lastDay = (yy: number, mm: number) => new Date(Date.UTC(yy, mm, 0)).getUTCDate();
  const start = `${y}${mo ?? '01'}${d ?? '01'}`;
  const end = `${y}${mo ?? '12'}${d ?? String(lastDay(Number(y), month ?? 12)).padStart(2, '0')}`;
  switch (prefix) {
    case 'ge':
      return { from: start };
    case 'gt':
      return { from: shiftDay(end, 1) };
    case 'le':
      return { to: end };
    case 'lt':
      return { to: shiftDay(start, -1) };
    default:
      return { from: start, to: end };
  }
}

/** Several date parameters (ge… and le…) together: their intersection. */
export function dateRange(name: string, raw: string | string[] | undefined): DateRange | undefined {
  if (raw === undefined) return undefined;
  const out: DateRange = {};
  for (const r of Array.isArray(raw) ? raw : [raw]) {
    const x = parseDate(name, r);
    if (x.from && (!out.from || x.from > out.from)) out.from = x.from;
    if (x.to && (!out.to || x.to < out.to)) out.to = x.to;
  }
  return out;
}

/** A token value: `system|code`, `|code` (no system) or `code` (any system). */
export function parseToken(raw: string): { system?: string; value: string } {
  const bar = raw.indexOf('|');
  if (bar < 0) return { value: raw };
  return { system: raw.slice(0, bar), value: raw.slice(bar + 1) };
}

/** A reference parameter (`Patient/12`, `12`, or an absolute URL ending so) as the id of `type`. */
export function referenceId(name: string, type: string, raw: string): string {
  const m = new RegExp(`(?:^|/)(?:${type}/)?([A-Za-z0-9\\-.]{1,64})$`).exec(raw.trim());
  if (!m || (raw.includes('/') && !raw.includes(`${type}/`)))
    throw new FhirSearchError(`${name}: "${raw}" is not a reference to a ${type} (${type}/<id>)`);
  return m[1]!;
}

/** The name of an R4 resource type (CapabilityStatement.rest.resource.type takes only these). */
export type ResourceType = fhir4.FhirResource['resourceType'];

export interface SupportedSearch {
  type: ResourceType;
  params: Array<{ name: string; type: 'token' | 'string' | 'date' | 'reference'; documentation: string }>;
}

export function capabilityStatement(baseUrl: string, software: string, at: string, searches: SupportedSearch[]): fhir4.CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: at,
    publisher: 'RadiantAI',
    kind: 'instance',
    software: { name: 'RadiantAI node', version: software },
    implementation: { description: 'RadiantAI node: imaging studies, AI draft and signed reports, findings and AI models', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        security: {
          description:
            'Bearer token from POST /api/auth/token (OAuth2 password form), permission images:read; every read is written to the audit trail.',
        },
        resource: searches.map(
          (s): fhir4.CapabilityStatementRestResource => ({
            type: s.type,
            interaction: [{ code: 'read' }, ...(s.params.length ? [{ code: 'search-type' as const }] : [])],
            ...(s.params.length ? { searchParam: s.params } : {}),
          }),
        ),
      },
    ],
  };
}
