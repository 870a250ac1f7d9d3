import { z } from 'zod';
import {
  createPatientBody,
  deletePatientQuery,
  listPatientsQuery,
  listStudiesQuery,
  updatePatientBody,
} from '../records/schemas.js';

/**
 * The OpenAPI 3.1 description of the node's HTTP API (served at /openapi.json, rendered at
 * /docs). Request schemas come from the same zod schemas that validate the requests.
 */

type Json = Record<string, unknown>;

function jsonSchema(schema: z.ZodType): Json {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Json;
  return rest;
}

function queryParameters(schema: z.ZodObject): Json[] {
  return Object.entries(schema.shape).map(([name, field]) => {
    const s = jsonSchema(field as z.ZodType);
    const { description, ...rest } = s;
    return { name, in: 'query', required: !(field as z.ZodType).safeParse(undefined).success, description, schema: rest };
  });
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json) => ({ 'application/json': { schema } });
const ok = (description: string, schema: Json) => ({ description, content: json(schema) });
const errorResponse = (description: string) => ({ description, content: json(ref('Error')) });

const E = {
  400: errorResponse('Invalid request (body, query or id); `details` lists the problems'),
  401: errorResponse('No valid bearer token'),
  403: errorResponse('The role lacks the permission'),
  404: errorResponse('Not found'),
  409: errorResponse('Conflict'),
  413: errorResponse('Body too large'),
  415: errorResponse('Wrong Content-Type'),
};

const nullableString = { type: ['string', 'null'] };
const nullableDate = { type: ['string', 'null'], format: 'date' };
const analysisStatus = {
  type: ['string', 'null'],
  enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled', null],
  description: "The latest analysis' status",
};
const reportStatus = { type: ['string', 'null'], enum: ['draft', 'preliminary', 'final', 'amended', null], description: "The latest report's state" };

const patientIdParam = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Index id of the patient (positive integer)',
  schema: { type: 'integer', minimum: 1, maximum: 2147483647 },
};

function secured(permission: string, op: Json): Json {
  return {
    security: [{ bearerAuth: [] }, { oauth2: [] }],
    'x-permission': permission,
    ...op,
    description: `${op.description ? `${String(op.description)}\n\n` : ''}Requires permission \`${permission}\`. Every call is written to the audit trail.`,
  };
}

function buildDocument(): Json {
  const schemas: Record<string, Json> = {
    Error: {
      type: 'object',
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          required: ['code', 'message'],
          properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
        },
      },
    },
    PatientCreate: jsonSchema(createPatientBody),
    PatientUpdate: jsonSchema(updatePatientBody),
    Patient: {
      type: 'object',
      properties: {
        id: { type: 'integer' },
        patient_id: { type: 'string' },
        issuer_of_patient_id: { type: 'string', description: 'Empty for patients created through the API' },
        first_name: nullableString,
        last_name: nullableString,
        patient_name: { ...nullableString, description: 'DICOM PN "Family^Given", what C-FIND and QIDO-RS match' },
        date_of_birth: nullableDate,
        gender: { ...nullableString, description: 'DICOM Patient Sex: M, F or O' },
        contact_phone: nullableString,
        medical_record_number: nullableString,
        study_count: { type: 'integer' },
        created_at: { type: 'string', format: 'date-time' },
        updated_at: { type: 'string', format: 'date-time' },
      },
    },
    PatientList: page('Patient'),
    PatientDeleted: {
      type: 'object',
      properties: {
        deleted: { const: true },
        id: { type: 'integer' },
        patient_id: { type: 'string' },
        studies: { type: 'integer' },
        series: { type: 'integer' },
        instances: { type: 'integer' },
        blobs_deleted: { type: 'integer' },
        blobs_failed: { type: 'integer', description: 'Blobs left behind (logged); the index rows are gone' },
      },
    },
    HistoryItem: {
      type: 'object',
      properties: {
        id: { type: 'integer', description: 'Index id of the study' },
        study_instance_uid: { type: 'string' },
        study_date: nullableDate,
        study_time: nullableString,
        modalities_in_study: { type: 'array', items: { type: 'string' } },
        study_description: nullableString,
        accession_number: nullableString,
        num_series: { type: 'integer' },
        num_instances: { type: 'integer' },
        created_at: { type: 'string', format: 'date-time' },
        analysis_status: analysisStatus,
        report_status: reportStatus,
      },
    },
    PatientHistory: {
      type: 'object',
      properties: { patient: ref('Patient'), total: { type: 'integer' }, items: { type: 'array', items: ref('HistoryItem') } },
    },
    Study: {
      type: 'object',
      properties: {
        id: { type: 'integer' },
        study_instance_uid: { type: 'string' },
        patient: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            patient_id: { type: 'string' },
            issuer_of_patient_id: { type: 'string' },
            patient_name: nullableString,
          },
        },
        study_date: nullableDate,
        study_time: nullableString,
        accession_number: nullableString,
        study_description: nullableString,
        study_id: nullableString,
        referring_physician_name: nullableString,
        modalities_in_study: { type: 'array', items: { type: 'string' } },
        num_series: { type: 'integer' },
        num_instances: { type: 'integer' },
        created_at: { type: 'string', format: 'date-time' },
        last_received_at: { type: 'string', format: 'date-time' },
        analysis_status: analysisStatus,
        report_status: reportStatus,
      },
    },
    Series: {
      type: 'object',
      properties: {
        id: { type: 'integer' },
        series_instance_uid: { type: 'string' },
        modality: nullableString,
        series_number: { type: ['integer', 'null'] },
        series_description: nullableString,
        body_part_examined: nullableString,
        num_instances: { type: 'integer' },
        created_at: { type: 'string', format: 'date-time' },
      },
    },
    StudyDetail: { allOf: [ref('Study'), { type: 'object', properties: { series: { type: 'array', items: ref('Series') } } }] },
    StudyList: page('Study'),
    UploadFile: {
      type: 'object',
      required: ['name', 'status'],
      properties: {
        name: { type: 'string', description: 'The file name the client sent' },
        status: { enum: ['stored', 'ignored', 'failed'], description: '`ignored`: a duplicate under DUPLICATE_POLICY=ignore' },
        sop_instance_uid: { type: 'string' },
        study_instance_uid: { type: 'string' },
        series_instance_uid: { type: 'string' },
        error: { type: 'string', description: 'Why the file was not stored (not DICOM, unsupported, too large...)' },
        warnings: { type: 'array', items: { type: 'string' }, description: 'E.g. the PatientID differs from the form\'s patient_id' },
      },
    },
    UploadReport: {
      type: 'object',
      properties: {
        study_id: { type: ['integer', 'null'], description: 'Index id of the (first) study the files went to' },
        study_instance_uid: nullableString,
        patient_id: { ...nullableString, description: 'PatientID of the stored files (as received)' },
        series_count: { type: 'integer', description: 'Series among the files of this upload' },
        total_images: { type: 'integer', description: 'Instances this upload stored' },
        status: { enum: ['stored', 'partial', 'failed'] },
        files: { type: 'array', items: ref('UploadFile') },
        studies: {
          type: 'array',
          description: 'Present when the files belong to more than one study',
          items: { type: 'object', properties: { study_id: { type: 'integer' }, study_instance_uid: { type: 'string' } } },
        },
        warnings: { type: 'array', items: { type: 'string' } },
      },
    },
    Token: {
      type: 'object',
      properties: { access_token: { type: 'string' }, token_type: { const: 'bearer' }, expires_in: { type: 'integer' } },
    },
    AuditEntry: {
      type: 'object',
      properties: {
        id: { type: 'integer' },
        at: { type: 'string', format: 'date-time' },
        actorType: { enum: ['user', 'ae', 'anonymous', 'system'] },
        actor: { type: 'string' },
        peer: { type: 'string' },
        action: { type: 'string', examples: ['patient.read', 'study.upload', 'auth.login'] },
        resourceType: { type: 'string' },
        resourceId: { type: 'string' },
        patientId: { type: 'string' },
        studyInstanceUid: { type: 'string' },
        outcome: { enum: ['success', 'failure'] },
        status: { type: 'integer' },
        details: { type: ['object', 'null'] },
      },
    },
    AuditList: page('AuditEntry'),
    RemoteNodeInput: {
      type: 'object',
      required: ['ae_title', 'host', 'port'],
      properties: {
        ae_title: { type: 'string', minLength: 1, maxLength: 16, description: 'AE VR: printable ASCII without backslash' },
        host: { type: 'string', maxLength: 255 },
        port: { type: 'integer', minimum: 1, maximum: 65535 },
        tls: { type: 'boolean', default: false },
        description: nullableString,
        allow_query_retrieve: { type: 'boolean', default: true, description: 'May call the node (allowlist) and be a C-MOVE destination' },
        stow_url: { type: ['string', 'null'], format: 'uri' },
      },
    },
    RemoteNode: { allOf: [{ type: 'object', properties: { id: { type: 'integer' } } }, ref('RemoteNodeInput')] },
    RemoteNodeList: { type: 'object', properties: { items: { type: 'array', items: ref('RemoteNode') } } },
    EchoResult: {
      type: 'object',
      properties: {
        ok: { type: 'boolean' },
        status: { type: 'integer', description: 'C-ECHO response status (0: success)' },
        ms: { type: 'number' },
        error: { type: 'string', description: 'Network or association error, when there was no response' },
      },
    },
  };
  const nodeIdParam = { name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } };
  const nodeErrors = { 400: E[400], 401: E[401], 403: E[403], 404: E[404] };

  const patientResponses = { 400: E[400], 401: E[401], 403: E[403], 404: E[404] };

  const paths: Record<string, Json> = {
    '/api/auth/register': {
      post: {
        tags: ['auth'],
        summary: 'Create a user (the first user of an empty node bootstraps as admin; then admins only)',
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            required: ['username', 'password', 'role'],
            properties: {
              username: { type: 'string', minLength: 3, maxLength: 64 },
              password: { type: 'string', minLength: 10, maxLength: 256 },
              role: { enum: ['admin', 'radiologist', 'technician', 'viewer', 'service'] },
              full_name: { type: 'string', maxLength: 128 },
            },
          }),
        },
        security: [{}, { bearerAuth: [] }],
        responses: { 201: { description: 'Created' }, 400: E[400], 401: E[401], 403: E[403], 409: E[409] },
      },
    },
    '/api/auth/token': {
      post: {
        tags: ['auth'],
        summary: 'Log in (OAuth2 password grant): a bearer token',
        requestBody: {
          required: true,
          content: {
            'application/x-www-form-urlencoded': {
              schema: {
                type: 'object',
                required: ['username', 'password'],
                properties: { grant_type: { const: 'password' }, username: { type: 'string' }, password: { type: 'string' } },
              },
            },
          },
        },
        security: [],
        responses: { 200: ok('Token', ref('Token')), 401: E[401], 429: errorResponse('Too many failed logins (Retry-After)') },
      },
    },
    '/api/auth/me': {
      get: {
        tags: ['auth'],
        summary: 'Who the token belongs to',
        security: [{ bearerAuth: [] }],
        responses: {
          200: ok('The user', { type: 'object', properties: { id: { type: 'integer' }, username: { type: 'string' }, role: { type: 'string' } } }),
          401: E[401],
        },
      },
    },
    '/api/patients': {
      get: secured('images:read', {
        tags: ['patients'],
        summary: 'List and search patients',
        operationId: 'listPatients',
        parameters: queryParameters(listPatientsQuery),
        responses: { 200: ok('A page of patients', ref('PatientList')), 400: E[400], 401: E[401], 403: E[403] },
      }),
      post: secured('patients:write', {
        tags: ['patients'],
        summary: 'Create a patient',
        operationId: 'createPatient',
        description:
          'Patients are the same rows DICOM ingest writes: what arrives over DICOM with this Patient ID (and no issuer) lands on this patient.',
        requestBody: { required: true, content: json(ref('PatientCreate')) },
        responses: {
          201: ok('Created', ref('Patient')),
          400: E[400],
          401: E[401],
          403: E[403],
          409: errorResponse('A patient with this Patient ID (and an empty issuer) exists'),
          413: E[413],
          415: E[415],
        },
      }),
    },
    '/api/patients/{id}': {
      parameters: [patientIdParam],
      get: secured('images:read', {
        tags: ['patients'],
        summary: 'Get a patient',
        operationId: 'getPatient',
        responses: { 200: ok('The patient', ref('Patient')), ...patientResponses },
      }),
      patch: secured('patients:write', {
        tags: ['patients'],
        summary: 'Update a patient (partial; null clears an optional field)',
        operationId: 'updatePatient',
        requestBody: { required: true, content: json(ref('PatientUpdate')) },
        responses: {
          200: ok('The updated patient', ref('Patient')),
          ...patientResponses,
          409: errorResponse('The new Patient ID is taken, or the patient has studies (its ID is in their DICOM)'),
          413: E[413],
          415: E[415],
        },
      }),
      put: secured('patients:write', {
        tags: ['patients'],
        summary: 'Update a patient (same as PATCH: partial)',
        operationId: 'replacePatient',
        requestBody: { required: true, content: json(ref('PatientUpdate')) },
        responses: { 200: ok('The updated patient', ref('Patient')), ...patientResponses, 409: E[409], 413: E[413], 415: E[415] },
      }),
      delete: secured('patients:delete', {
        tags: ['patients'],
        summary: 'Delete a patient',
        operationId: 'deletePatient',
        description:
          'Refused (409) while the patient has studies, unless `cascade=true`: then its studies, series and instances are deleted from the index and their blobs from storage.',
        parameters: queryParameters(deletePatientQuery),
        responses: { 200: ok('Deleted', ref('PatientDeleted')), ...patientResponses, 409: errorResponse('The patient has studies') },
      }),
    },
    '/api/patients/{id}/history': {
      parameters: [patientIdParam],
      get: secured('images:read', {
        tags: ['patients'],
        summary: "The patient's studies, newest first",
        operationId: 'patientHistory',
        responses: { 200: ok('History', ref('PatientHistory')), ...patientResponses },
      }),
    },
    '/api/studies': {
      get: secured('images:read', {
        tags: ['studies'],
        summary: 'List studies',
        operationId: 'listStudies',
        parameters: queryParameters(listStudiesQuery),
        responses: { 200: ok('A page of studies', ref('StudyList')), 400: E[400], 401: E[401], 403: E[403] },
      }),
    },
    '/api/studies/{id}': {
      parameters: [
        {
          name: 'id',
          in: 'path',
          required: true,
          description: 'Index id of the study (digits only) or its Study Instance UID',
          schema: { type: 'string', pattern: '^[0-9.]{1,64}$' },
        },
      ],
      get: secured('images:read', {
        tags: ['studies'],
        summary: 'Get a study with its series',
        operationId: 'getStudy',
        responses: { 200: ok('The study', ref('StudyDetail')), 400: E[400], 401: E[401], 403: E[403], 404: E[404] },
      }),
    },
    '/api/studies/upload': {
      post: secured('images:write', {
        tags: ['studies'],
        summary: 'Upload DICOM files',
        operationId: 'uploadStudy',
        description:
          'Each file goes through the node\'s one ingest path (as C-STORE and STOW-RS), one after the other, streamed. Files that are not acceptable DICOM are reported by name; the others are stored. `patient_id` is checked, not applied: the node never rewrites DICOM, so a file with another PatientID is stored as received with a warning. Send `patient_id` before the files. The whole body is limited by MAX_UPLOAD_BYTES (413).',
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': {
              schema: {
                type: 'object',
                required: ['files'],
                properties: {
                  patient_id: { type: 'string', maxLength: 64, description: 'Expected DICOM PatientID' },
                  files: {
                    type: 'array',
                    items: { type: 'string', format: 'binary', contentMediaType: 'application/dicom' },
                  },
                },
              },
              encoding: { files: { contentType: 'application/dicom, application/octet-stream' } },
            },
          },
        },
        responses: {
          201: ok('At least one file stored (status stored or partial)', ref('UploadReport')),
          400: E[400],
          401: E[401],
          403: E[403],
          413: E[413],
          415: E[415],
          422: ok('No file stored: the report, with an error', { allOf: [ref('Error'), ref('UploadReport')] }),
        },
      }),
    },
    '/api/audit': {
      get: secured('audit:read', {
        tags: ['audit'],
        summary: 'Query the audit trail, newest first',
        parameters: [
          ...['user', 'patient_id', 'study', 'action', 'from', 'to'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })),
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
        ],
        responses: { 200: ok('A page of audit rows', ref('AuditList')), 400: E[400], 401: E[401], 403: E[403] },
      }),
    },
    '/api/nodes': {
      get: secured('nodes:manage', {
        tags: ['nodes'],
        summary: 'List remote DICOM nodes',
        responses: { 200: ok('The nodes', ref('RemoteNodeList')), 401: E[401], 403: E[403] },
      }),
      post: secured('nodes:manage', {
        tags: ['nodes'],
        summary: 'Register a remote DICOM node (C-MOVE destination, allowlisted caller)',
        requestBody: { required: true, content: json(ref('RemoteNodeInput')) },
        responses: { 201: ok('Created', ref('RemoteNode')), 409: E[409], ...nodeErrors },
      }),
    },
    '/api/nodes/{id}': {
      get: secured('nodes:manage', { tags: ['nodes'], summary: 'Read a node', parameters: [nodeIdParam], responses: { 200: ok('The node', ref('RemoteNode')), ...nodeErrors } }),
      put: secured('nodes:manage', {
        tags: ['nodes'],
        summary: 'Update a node (fields given only)',
        parameters: [nodeIdParam],
        requestBody: { required: true, content: json(ref('RemoteNodeInput')) },
        responses: { 200: ok('The node', ref('RemoteNode')), 409: E[409], ...nodeErrors },
      }),
      delete: secured('nodes:manage', { tags: ['nodes'], summary: 'Delete a node', parameters: [nodeIdParam], responses: { 204: { description: 'Deleted' }, ...nodeErrors } }),
    },
    '/api/nodes/{id}/echo': {
      post: secured('nodes:manage', {
        tags: ['nodes'],
        summary: 'C-ECHO the node',
        parameters: [nodeIdParam],
        responses: { 200: ok('The outcome (ok false with error when the node cannot be reached)', ref('EchoResult')), ...nodeErrors },
      }),
    },
    '/api/forwarding/rules': {
      get: secured('nodes:manage', { tags: ['forwarding'], summary: 'List forwarding rules', responses: { 200: ok('The rules', { type: 'object' }), 401: E[401], 403: E[403] } }),
      post: secured('nodes:manage', {
        tags: ['forwarding'],
        summary: 'Create a rule: {name, enabled, node_id, match: {modalities, callingAeTitles, sopClassUids, sources, aiResults}}',
        requestBody: { required: true, content: json({ type: 'object' }) },
        responses: { 201: ok('Created', { type: 'object' }), 400: E[400], 401: E[401], 403: E[403], 422: { description: 'Unknown node' } },
      }),
    },
    '/api/forwarding/rules/{id}': {
      get: secured('nodes:manage', { tags: ['forwarding'], summary: 'Read a rule', parameters: [nodeIdParam], responses: { 200: ok('The rule', { type: 'object' }), ...nodeErrors } }),
      put: secured('nodes:manage', { tags: ['forwarding'], summary: 'Replace a rule', parameters: [nodeIdParam], requestBody: { required: true, content: json({ type: 'object' }) }, responses: { 200: ok('The rule', { type: 'object' }), ...nodeErrors } }),
      delete: secured('nodes:manage', { tags: ['forwarding'], summary: 'Delete a rule', parameters: [nodeIdParam], responses: { 204: { description: 'Deleted' }, ...nodeErrors } }),
    },
    '/api/forwarding': {
      get: secured('nodes:manage', {
        tags: ['forwarding'],
        summary: 'The forwarding queue: queued, sending, sent, failed (with the reason), and counts per status',
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string', enum: ['queued', 'sending', 'sent', 'failed'] } },
          { name: 'node_id', in: 'query', schema: { type: 'integer' } },
          { name: 'study', in: 'query', schema: { type: 'string' } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
          { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
        ],
        responses: { 200: ok('A page of queue rows', { type: 'object' }), 400: E[400], 401: E[401], 403: E[403] },
      }),
    },
    '/api/forwarding/{id}/retry': {
      post: secured('nodes:manage', { tags: ['forwarding'], summary: 'Queue a failed send again', parameters: [nodeIdParam], responses: { 200: ok('Requeued', { type: 'object' }), 409: E[409], ...nodeErrors } }),
    },
    '/api/engine': {
      get: secured('analysis:run', {
        tags: ['engine'],
        summary: 'MedGemma engine status: off, starting, ready or failed (with the reason), backend and model identity',
        responses: { 200: ok('The status', { type: 'object' }), 401: E[401], 403: E[403] },
      }),
    },
    '/api/analysis': {
      post: secured('analysis:run', {
        tags: ['analysis'],
        summary: 'Ask for an AI analysis (an AI draft for review): {study_id, clinical_indication?, analysis_type: primary|comparison|focused, focus?}',
        requestBody: { required: true, content: json({ type: 'object', required: ['study_id'] }) },
        responses: { 202: ok('Queued; Location names it', { type: 'object' }), 400: E[400], 401: E[401], 403: E[403], 404: E[404] },
      }),
    },
    '/api/analysis/{id}': {
      get: secured('images:read', {
        tags: ['analysis'],
        summary: 'An analysis: status and progress, findings, measurements, impression, model and prompt provenance, images, timings',
        parameters: [nodeIdParam],
        responses: { 200: ok('The analysis', { type: 'object' }), 401: E[401], 403: E[403], 404: E[404] },
      }),
    },
    '/api/analysis/{id}/cancel': {
      post: secured('analysis:run', { tags: ['analysis'], summary: 'Cancel a queued or running analysis', parameters: [nodeIdParam], responses: { 200: ok('Cancelled', { type: 'object' }), 409: E[409], 401: E[401], 403: E[403], 404: E[404] } }),
    },
    '/api/studies/{id}/analyses': {
      get: secured('images:read', {
        tags: ['analysis'],
        summary: "A study's analyses, newest first",
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'Study id or Study Instance UID' }],
        responses: { 200: ok('The analyses', { type: 'object' }), 401: E[401], 403: E[403], 404: E[404] },
      }),
    },
    '/api/reports': {
      post: secured('analysis:run', {
        tags: ['reports'],
        summary: 'Create the draft report of a finished analysis and publish it (SR + Encapsulated PDF): {study_id, analysis_id, include_ai_disclaimer}',
        requestBody: { required: true, content: json({ type: 'object', required: ['study_id', 'analysis_id'] }) },
        responses: { 201: ok('Created', { type: 'object' }), 400: E[400], 401: E[401], 403: E[403], 404: E[404], 409: E[409] },
      }),
    },
    '/api/reports/{id}': {
      get: secured('images:read', { tags: ['reports'], summary: 'A report with its versions', parameters: [nodeIdParam], responses: { 200: ok('The report', { type: 'object' }), 401: E[401], 403: E[403], 404: E[404] } }),
      patch: secured('reports:sign', {
        tags: ['reports'],
        summary: 'Edit a draft or preliminary report (impression, comparison, limitations, clinical_indication, findings, measurements); ?version=N refuses a stale edit',
        parameters: [nodeIdParam],
        requestBody: { required: true, content: json({ type: 'object' }) },
        responses: { 200: ok('The report', { type: 'object' }), 400: E[400], 401: E[401], 403: E[403], 404: E[404], 409: E[409] },
      }),
    },
    '/api/reports/{id}/sign': {
      post: secured('reports:sign', { tags: ['reports'], summary: 'Sign (radiologists only): final, VERIFIED SR and final PDF published', parameters: [nodeIdParam], responses: { 200: ok('The report', { type: 'object' }), 401: E[401], 403: E[403], 404: E[404], 409: E[409] } }),
    },
    '/api/reports/{id}/amend': {
      post: secured('reports:sign', {
        tags: ['reports'],
        summary: 'Amend a signed report (radiologists only): {reason, changes?}',
        parameters: [nodeIdParam],
        requestBody: { required: true, content: json({ type: 'object', required: ['reason'] }) },
        responses: { 200: ok('The report', { type: 'object' }), 400: E[400], 401: E[401], 403: E[403], 404: E[404], 409: E[409] },
      }),
    },
    '/api/export/report/{id}/pdf': {
      get: secured('images:read', { tags: ['reports'], summary: 'The published PDF', parameters: [nodeIdParam], responses: { 200: { description: 'PDF', content: { 'application/pdf': { schema: { type: 'string', format: 'binary' } } } }, 401: E[401], 403: E[403], 404: E[404] } }),
    },
    '/api/export/report/{id}/json': {
      get: secured('images:read', { tags: ['reports'], summary: 'The report as JSON (schema https://radiant-ai.local/schemas/report/v1)', parameters: [nodeIdParam], responses: { 200: ok('{schema, report, content, versions}', { type: 'object' }), 401: E[401], 403: E[403], 404: E[404] } }),
    },
    '/api/export/report/{id}/dicom-sr': {
      get: secured('images:read', { tags: ['reports'], summary: 'The published SR, Part 10', parameters: [nodeIdParam], responses: { 200: { description: 'DICOM', content: { 'application/dicom': { schema: { type: 'string', format: 'binary' } } } }, 401: E[401], 403: E[403], 404: E[404] } }),
    },
    '/healthz': {
      get: { tags: ['health'], summary: 'Liveness', security: [], responses: { 200: ok('Alive', { type: 'object' }) } },
    },
    '/readyz': {
      get: {
        tags: ['health'],
        summary: 'Readiness: index and storage reachable',
        security: [],
        responses: { 200: ok('Ready', { type: 'object' }), 503: ok('Not ready', { type: 'object' }) },
      },
    },
    '/metrics': {
      get: {
        tags: ['health'],
        summary: 'Prometheus metrics',
        security: [],
        responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
  };

  return {
    openapi: '3.1.0',
    info: {
      title: 'RadiantAI node API',
      version: '0.1.0',
      description:
        'Patients, studies and uploads of a RadiantAI PACS node. DICOMweb lives under /dicom-web and DIMSE on the DICOM port. Errors are `{"error": {"code", "message", "details"}}`.',
    },
    tags: [
      { name: 'auth', description: 'Users and tokens' },
      { name: 'patients' },
      { name: 'studies' },
      { name: 'audit' },
      { name: 'nodes', description: 'Remote DICOM nodes' },
      { name: 'analysis', description: 'AI analyses (MedGemma drafts awaiting radiologist review)' },
      { name: 'reports', description: 'Reports on AI analyses: review, sign-off, DICOM-SR and PDF exports' },
      { name: 'health' },
    ],
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        oauth2: { type: 'oauth2', flows: { password: { tokenUrl: '/api/auth/token', scopes: {} } } },
      },
      schemas,
    },
  };
}

function page(item: string): Json {
  return {
    type: 'object',
    required: ['total', 'limit', 'offset', 'items'],
    properties: {
      total: { type: 'integer' },
      limit: { type: 'integer' },
      offset: { type: 'integer' },
      items: { type: 'array', items: ref(item) },
    },
  };
}

let cached: string | undefined;

/** The document as JSON text (built once). */
export function openApiJson(): string {
  cached ??= JSON.stringify(buildDocument());
  return cached;
}
