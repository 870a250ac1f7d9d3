/**
 * Shapes of the API's JSON answers, for the OpenAPI document (src/http/openapi.ts registers them
 * under components/schemas). Requests are described by the zod schemas that validate them (in
 * the route modules); answers are built in code, so their shapes are written here.
 */

type Json = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const nullableString = { type: ['string', 'null'] };
const nullableDate = { type: ['string', 'null'], format: 'date' };
const analysisStatus = {
  type: ['string', 'null'],
  enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled', null],
  description: "The latest analysis' status",
};
const reportStatus = {
  type: ['string', 'null'],
  enum: ['draft', 'preliminary', 'final', 'amended', null],
  description: "The latest report's state",
};

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

const sha256 = { type: 'string', pattern: '^[0-9a-f]{64}$' };
const nullableSha256 = { type: ['string', 'null'], pattern: '^[0-9a-f]{64}$' };
const nullableInteger = { type: ['integer', 'null'] };

/** GET /api/analysis/{id} and friends (src/http/routes/analysis.ts analysisView). */
const ANALYSIS_SCHEMAS: Record<string, Json> = {
  SafetyFlag: {
    type: 'object',
    required: ['target', 'phrase', 'rule'],
    description: 'One hit of one safety rule; the gate flags, it never rewrites the model text',
    properties: {
      target: {
        oneOf: [
          { type: 'integer', minimum: 0, description: "Index of the finding (the analysis' findings[].index)" },
          { enum: ['impression', 'answer'] },
        ],
      },
      phrase: { type: 'string', description: 'The words as the model wrote them ("[redacted <kind>]" for an echoed identifier)' },
      rule: {
        type: 'string',
        examples: ['definitive_diagnosis', 'certainty', 'phi_echo', 'truncated', 'region_dropped'],
      },
    },
  },
  AnalysisModel: {
    type: ['object', 'null'],
    properties: {
      name: { type: 'string' },
      sha256: nullableSha256,
      quantization: nullableString,
      mmproj_sha256: nullableSha256,
      backend: nullableString,
      validated: {
        type: 'boolean',
        description:
          'True only for a trusted SHA-256 (MEDGEMMA_TRUSTED_SHA256 or a known published file). An unvalidated ' +
          "model's results are labelled so in the SR and PDF and never forwarded automatically (MEDGEMMA_ALLOW_UNVALIDATED_MODEL)",
      },
      validation: {
        type: 'object',
        properties: {
          basis: { enum: ['sha256-allowlist', 'known-release-shapes', 'none'] },
          release: { type: 'string' },
          reason: { type: 'string' },
        },
      },
      architecture: nullableString,
      gguf_name: nullableString,
      bytes: nullableInteger,
      parameters: nullableInteger,
      mmproj: {
        type: ['object', 'null'],
        properties: {
          name: { type: 'string' },
          sha256,
          bytes: nullableInteger,
          projection_dim: nullableInteger,
          matches_model: { type: ['boolean', 'null'] },
        },
      },
    },
  },
  AnalysisProvenance: {
    type: ['object', 'null'],
    description: 'SHA-256 digests of what was sent and what answered; null for analyses stored before provenance was recorded',
    properties: {
      system_prompt_sha256: { ...nullableSha256, description: 'Null: no system message was sent' },
      user_prompt_sha256: { ...sha256, description: "The user message's content, images replaced by their position (canonical JSON)" },
      schema_sha256: sha256,
      sampling: { type: 'object', description: 'Sampling parameters as sent (temperature, top_k, top_p, seed, max_tokens...)' },
      sampling_sha256: sha256,
      image_sha256: { type: 'array', items: sha256, description: "Every image's bytes as sent, in order" },
      model_sha256: nullableSha256,
      mmproj_sha256: nullableSha256,
      model_validated: { type: 'boolean' },
      llama_build: { ...nullableString, description: 'The llama.cpp build the backend reports; null for a remote endpoint' },
      prompt_tokens: nullableInteger,
      predicted_tokens: nullableInteger,
      finish_reason: nullableString,
      timings: { type: ['object', 'null'] },
    },
  },
  Analysis: {
    type: 'object',
    required: ['id', 'status', 'ai_draft', 'images', 'safety_flags', 'raw_answer', 'model'],
    properties: {
      id: { type: 'integer' },
      study_instance_uid: { type: 'string' },
      status: { enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
      analysis_type: { enum: ['primary', 'comparison', 'focused'] },
      trigger: { enum: ['manual', 'auto', 'workitem'] },
      ai_draft: { const: true },
      model: ref('AnalysisModel'),
      images: {
        type: 'array',
        description: 'In the order sent to the model',
        items: {
          type: 'object',
          properties: {
            index: { type: 'integer' },
            sop_instance_uid: { type: 'string' },
            frame_number: { type: 'integer' },
            series_instance_uid: { type: 'string' },
            study_instance_uid: { type: 'string', description: "Only for a prior study's image (comparison)" },
          },
        },
      },
      findings: { type: 'array', items: { type: 'object' }, description: "The model's words (echoed patient identifiers redacted)" },
      measurements: { type: 'array', items: { type: 'object' } },
      impression: nullableString,
      safety_flags: { type: 'array', items: ref('SafetyFlag') },
      raw_answer: {
        ...nullableString,
        description: "The model's text verbatim, also for a failed analysis; never published into DICOM",
      },
      provenance: ref('AnalysisProvenance'),
      timings: { type: 'object' },
      error: nullableString,
    },
  },
  AnalysisList: { type: 'object', properties: { items: { type: 'array', items: ref('Analysis') } } },
};

export const RESPONSE_SCHEMAS: Record<string, Json> = {
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
      analysis: {
        type: ['object', 'null'],
        description: 'The latest AI analysis; null when the study has none',
        properties: {
          id: { type: 'integer' },
          status: { enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
          progress: {
            type: 'object',
            properties: { stage: nullableString, percent: { type: ['integer', 'null'], minimum: 0, maximum: 100 } },
          },
        },
      },
      safety_flags: {
        type: 'object',
        description: "The latest analysis' safety flags: how many, and how many hold auto-publishing",
        properties: { count: { type: 'integer' }, blocking: { type: 'integer' } },
      },
      report: {
        type: ['object', 'null'],
        description: 'The latest report; null when the study has none',
        properties: {
          id: { type: 'integer' },
          status: { enum: ['draft', 'preliminary', 'final', 'amended'] },
          version: { type: 'integer' },
          signed: { type: 'boolean', description: 'final or amended' },
          signed_by: nullableString,
          signer_name: { ...nullableString, description: 'DICOM person name of the signer' },
          signed_at: { type: ['string', 'null'], format: 'date-time' },
        },
      },
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
  StudyList: {
    allOf: [
      page('Study'),
      {
        type: 'object',
        properties: {
          next_cursor: {
            type: ['string', 'null'],
            description: 'The next page (same filters and sort) as `cursor`; null on the last page',
          },
        },
      },
    ],
  },
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
      warnings: { type: 'array', items: { type: 'string' }, description: "E.g. the PatientID differs from the form's patient_id" },
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
  RemoteNode: {
    type: 'object',
    properties: {
      id: { type: 'integer' },
      ae_title: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'integer' },
      tls: { type: 'boolean' },
      description: nullableString,
      allow_query_retrieve: { type: 'boolean', description: 'May call the node (allowlist) and be a C-MOVE destination' },
      stow_url: { type: ['string', 'null'], format: 'uri' },
      stow_authorization_set: { type: 'boolean', description: 'Whether STOW-RS credentials are set (they are never read back)' },
    },
  },
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
  ...ANALYSIS_SCHEMAS,
};
