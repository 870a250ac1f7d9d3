import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { apiDoc } from './api-doc.js';
import { RESPONSE_SCHEMAS } from './api-schemas.js';

/**
 * The OpenAPI 3.1 description of the node's HTTP API (served at /openapi.json, rendered at
 * /docs), generated from what the route modules registered in apiDoc (src/http/api-doc.ts):
 * request schemas are the zod schemas that validate the requests.
 */

type Component = Parameters<OpenAPIRegistry['registerComponent']>[2];

function buildDocument(): object {
  // A child registry: the shared components are added per build, never twice to apiDoc.
  const reg = new OpenAPIRegistry([apiDoc]);
  for (const [name, schema] of Object.entries(RESPONSE_SCHEMAS)) reg.registerComponent('schemas', name, schema as Component);
  reg.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  reg.registerComponent('securitySchemes', 'oauth2', { type: 'oauth2', flows: { password: { tokenUrl: '/api/auth/token', scopes: {} } } });
  return new OpenApiGeneratorV31(reg.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'RadiantAI node API',
      version: '0.1.0',
      description:
        'Patients, studies and uploads of a RadiantAI PACS node, its DICOMweb services under /dicom-web and WADO-URI at /wado. DIMSE ' +
        'listens on the DICOM port. Errors are `{"error": {"code", "message", "details"}}`.',
    },
    tags: [
      { name: 'auth', description: 'Users and tokens' },
      { name: 'patients' },
      { name: 'studies' },
      { name: 'audit' },
      { name: 'nodes', description: 'Remote DICOM nodes' },
      { name: 'forwarding', description: 'Auto-routing rules and the forwarding queue' },
      { name: 'engine', description: 'The MedGemma engine' },
      { name: 'analysis', description: 'AI analyses (MedGemma drafts awaiting radiologist review)' },
      { name: 'reports', description: 'Reports on AI analyses: review, sign-off, DICOM-SR and PDF exports' },
      { name: 'dicomweb', description: 'DICOMweb (PS3.18): QIDO-RS, WADO-RS, STOW-RS, rendered resources, WADO-URI' },
      { name: 'docs', description: 'This description' },
      { name: 'health' },
    ],
    security: [{ bearerAuth: [] }],
  });
}

let cached: string | undefined;

/** The document as JSON text (built once, on the first request: every route module has registered by then). */
export function openApiJson(): string {
  cached ??= JSON.stringify(buildDocument());
  return cached;
}
