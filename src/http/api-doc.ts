import { OpenAPIRegistry, type ResponseConfig, type RouteConfig, type ZodMediaTypeObject } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

/**
 * The registry of the node's OpenAPI document (src/http/openapi.ts generates it). Each route
 * module registers its own paths here, next to its routes, with the zod schemas it validates
 * requests with; DICOMweb does the same in dicomweb/openapi.ts. Registration runs once, when a
 * module is first imported, so several apps in one process share one description.
 * test/api-studies.test.ts checks that every route on the routers is documented and no more.
 */
export const apiDoc = new OpenAPIRegistry();

/** A zod schema, a JSON schema, or a $ref. */
type Schema = NonNullable<ZodMediaTypeObject['schema']>;

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const json = (schema: Schema) => ({ 'application/json': { schema } });
export const ok = (description: string, schema: Schema): ResponseConfig => ({ description, content: json(schema) });
export const errorResponse = (description: string): ResponseConfig => ({ description, content: json(ref('Error')) });
/** A response whose body is anything but JSON (images, DICOM, multipart): its media types. */
export const media = (description: string, types: string[]): ResponseConfig => ({
  description,
  content: Object.fromEntries(types.map((t) => [t, { schema: { type: 'string', format: 'binary' } }])),
});

/** The error envelope's responses, by status. */
export const E = {
  400: errorResponse('Invalid request (body, query or id); `details` lists the problems'),
  401: errorResponse('No valid bearer token'),
  403: errorResponse('The role lacks the permission'),
  404: errorResponse('Not found'),
  406: errorResponse('None of the accepted media types or transfer syntaxes can be produced'),
  409: errorResponse('Conflict'),
  413: errorResponse('Body too large'),
  415: errorResponse('Wrong Content-Type'),
  422: errorResponse('Unprocessable'),
  503: errorResponse('Service temporarily unavailable (Retry-After)'),
} as const;

/** 401 and 403: what every guarded route can answer. */
export const GUARDED = { 401: E[401], 403: E[403] };

const MAX_PK = 2_147_483_647;

/** A numeric index id in the path (`:id`), as parsePk (src/records/schemas.ts) accepts it. */
export const idParams = (what: string) =>
  z.object({ id: z.int().min(1).max(MAX_PK).describe(`Index id of the ${what} (positive integer)`) });

/** A study in the path (`:id`): its index id or its Study Instance UID, as parseStudyRef accepts it. */
export const studyRefParams = z.object({
  id: z
    .string()
    .regex(/^[0-9.]{1,64}$/)
    .describe('Index id of the study (digits only) or its Study Instance UID'),
});

/** A route that needs a permission: the security requirement, `x-permission`, and the audit note. */
export function secured(permission: string, route: RouteConfig): RouteConfig {
  return {
    security: [{ bearerAuth: [] }, { oauth2: [] }],
    'x-permission': permission,
    ...route,
    description: `${route.description ? `${route.description}\n\n` : ''}Requires permission \`${permission}\`. Every call is written to the audit trail.`,
  };
}

/** Registers routes of the document (the registry's registerPath, several at once). */
export function documentRoutes(...routes: RouteConfig[]): void {
  for (const r of routes) apiDoc.registerPath(r);
}
