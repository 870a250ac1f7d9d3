import { z } from 'zod';
import { isValidUid } from '../dicom/uids.js';
import { RadiantError } from '../errors.js';

/**
 * Request schemas of the application API. They validate the requests and, registered by the
 * route modules (src/http/api-doc.ts), are the request schemas of the OpenAPI document.
 */

/** LO (PS3.5 6.2): no backslash (the value separator), no control characters. */
const LO_CHARS = /^[^\\\u0000-\u001f\u007f]+$/;
/** One PN component: also no '^' (component separator) and no '=' (component group separator). */
const PN_COMPONENT_CHARS = /^[^\\^=\u0000-\u001f\u007f]+$/;

const patientId = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(LO_CHARS, 'no backslash or control characters')
  .describe('DICOM Patient ID (0010,0020); with an empty Issuer of Patient ID it identifies the patient');
const namePart = (what: string) =>
  z.string().trim().min(1).max(64).regex(PN_COMPONENT_CHARS, "no '^', '=', backslash or control characters").describe(what);
const dateOfBirth = z.iso
  .date()
  .refine((d) => d <= new Date().toISOString().slice(0, 10), 'date of birth is in the future')
  .describe('YYYY-MM-DD; stored as DICOM DA YYYYMMDD');
const gender = z.enum(['M', 'F', 'O']).describe('DICOM Patient Sex (0010,0040): M, F or O');
const phone = z
  .string()
  .trim()
  .min(3)
  .max(32)
  .regex(/^\+?[0-9][0-9 ().\/-]*$/, 'digits, spaces and + ( ) . / - only');
const mrn = z.string().trim().min(1).max(64).regex(LO_CHARS, 'no backslash or control characters');

export const createPatientBody = z.strictObject({
  patient_id: patientId,
  first_name: namePart('Given name'),
  last_name: namePart('Family name'),
  date_of_birth: dateOfBirth.optional(),
  gender: gender.optional(),
  contact_phone: phone.optional(),
  medical_record_number: mrn.optional(),
});
export type CreatePatientBody = z.infer<typeof createPatientBody>;

/** PATCH and PUT: every field optional; null clears an optional field. */
export const updatePatientBody = z.strictObject({
  patient_id: patientId.optional(),
  first_name: namePart('Given name').optional(),
  last_name: namePart('Family name').optional(),
  date_of_birth: dateOfBirth.nullable().optional(),
  gender: gender.nullable().optional(),
  contact_phone: phone.nullable().optional(),
  medical_record_number: mrn.nullable().optional(),
});
export type UpdatePatientBody = z.infer<typeof updatePatientBody>;

/** Free text in a query: no control characters (PostgreSQL refuses NUL in text outright). */
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;

const limit = z.coerce.number().int().min(1).max(200).default(50);
const offset = z.coerce.number().int().min(0).max(1_000_000_000).default(0);

export const listPatientsQuery = z.object({
  q: z
    .string()
    .trim()
    .max(64)
    .regex(NO_CONTROL, 'no control characters')
    .optional()
    .describe('Prefix of the family or given name (case-insensitive) or of the Patient ID'),
  limit,
  offset,
});

export const listStudiesQuery = z.object({
  patient_id: z.string().trim().min(1).max(64).regex(NO_CONTROL, 'no control characters').optional().describe('Exact DICOM Patient ID'),
  modality: z
    .string()
    .trim()
    .toUpperCase()
    .regex(/^[A-Z0-9_]{1,16}$/, 'a DICOM modality code such as CT')
    .optional(),
  date_from: z.iso.date().optional().describe('Study date on or after (YYYY-MM-DD)'),
  date_to: z.iso.date().optional().describe('Study date on or before (YYYY-MM-DD)'),
  accession: z.string().trim().min(1).max(16).regex(NO_CONTROL, 'no control characters').optional().describe('Exact Accession Number'),
  patient: z
    .string()
    .trim()
    .min(1)
    .max(64)
    .regex(NO_CONTROL, 'no control characters')
    .optional()
    .describe('Patient name (contains, case-insensitive) or Patient ID (prefix)'),
  ai_status: z
    .enum(['none', 'queued', 'running', 'succeeded', 'failed', 'cancelled'])
    .optional()
    .describe("The latest AI analysis's status; `none`: never analysed"),
  report_status: z
    .enum(['none', 'unsigned', 'signed', 'draft', 'preliminary', 'final', 'amended'])
    .optional()
    .describe("The latest report's state; `unsigned` = draft or preliminary, `signed` = final or amended, `none`: no report"),
  sort: z
    .enum(['date', 'patient', 'status'])
    .default('date')
    .describe('date: newest study first; patient: name A→Z; status: AI running, queued, failed, succeeded, cancelled, none'),
  cursor: z
    .string()
    .max(1024)
    .regex(/^[A-Za-z0-9_-]+$/, 'a cursor as next_cursor gave it')
    .optional()
    .describe("Keyset paging: the previous page's next_cursor (same filters and sort); offset is then ignored"),
  limit,
  offset,
});

export const deletePatientQuery = z.object({
  cascade: z.enum(['true', 'false', '1', '0']).optional(),
});

/** The upload form's patient_id field (the same rules as a patient's). */
export const uploadPatientId = patientId;

const MAX_PK = 2_147_483_647;

/** A numeric index id in a path: a positive 32-bit integer, digits only. */
export function parsePk(raw: string | undefined, what: string): number {
  if (raw === undefined || !/^[1-9][0-9]{0,9}$/.test(raw) || Number(raw) > MAX_PK) {
    throw new RadiantError('invalid-input', `${what} id must be a positive integer`, { code: 'invalid_id' });
  }
  return Number(raw);
}

/** A study reference in a path: its index id (digits only) or its Study Instance UID. */
export function parseStudyRef(raw: string | undefined): { pk: number } | { uid: string } {
  if (raw !== undefined && /^[0-9]+$/.test(raw)) return { pk: parsePk(raw, 'study') };
  if (isValidUid(raw)) return { uid: raw };
  throw new RadiantError('invalid-input', 'study id must be a positive integer or a Study Instance UID', { code: 'invalid_id' });
}

/** YYYY-MM-DD (API) to DA YYYYMMDD (index). */
export function toDicomDate(iso: string): string {
  return iso.replace(/-/g, '');
}

/** DA YYYYMMDD (index) to YYYY-MM-DD, or null for an empty or non-conforming value. */
export function fromDicomDate(da: string | null | undefined): string | null {
  if (!da || !/^\d{8}$/.test(da)) return null;
  return `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}`;
}
