import type { DicomJsonAttribute, DicomJsonDataset } from '../dicom/dicom-json.js';
import { tag, vrOf } from '../dicom/dictionary.js';
import { isValidUid } from '../dicom/uids.js';
import { DIMSE, UpsError, WARNINGS, type UpsState } from './state-machine.js';

/**
 * Workitems in the one DICOM JSON model (src/dicom/dicom-json.ts): reading and writing their
 * attributes by keyword, what a Create must carry (PS3.4 Table CC.2.5-3, N-CREATE column, the
 * attributes this node relies on), and the event reports (PS3.4 Table CC.2.4-1) the WebSocket
 * channel sends.
 */

/** The UPS Push SOP Class: every workitem is an instance of it (PS3.4 CC.1.1). */
export const UPS_PUSH_SOP_CLASS = '1.2.840.10008.5.1.4.34.6.1';
/** The UPS Event SOP Class, the Affected SOP Class of every event report. */
export const UPS_EVENT_SOP_CLASS = '1.2.840.10008.5.1.4.34.6.4';
/**
 * The UPS SOP classes (PS3.4 CC.3.1) whose services the Worklist Service (UPS-RS) carries here, as
 * an origin server, with the transactions that carry them (PS3.18 Table 11.3-1): the conformance
 * statement's table (src/http/conformance.ts).
 */
export const UPS_SOP_CLASSES: ReadonlyArray<{ name: string; uid: string; transactions: string }> = [
  { name: 'UPS Push', uid: UPS_PUSH_SOP_CLASS, transactions: 'Create, Request Cancellation, Retrieve' },
  { name: 'UPS Pull', uid: '1.2.840.10008.5.1.4.34.6.3', transactions: 'Search, Retrieve, Update, Change State' },
  {
    name: 'UPS Watch',
    uid: '1.2.840.10008.5.1.4.34.6.2',
    transactions: 'Subscribe, Unsubscribe, Suspend, Retrieve, Search, Request Cancellation',
  },
  { name: 'UPS Event', uid: UPS_EVENT_SOP_CLASS, transactions: 'Open Event Channel, Send Event Report (WebSocket)' },
  { name: 'UPS Query', uid: '1.2.840.10008.5.1.4.34.6.5', transactions: 'Search' },
];

/** Well-known SOP Instance UIDs of the worklist subscriptions (PS3.4 CC.3.1). */
export const GLOBAL_SUBSCRIPTION_UID = '1.2.840.10008.5.1.4.34.5';
export const FILTERED_GLOBAL_SUBSCRIPTION_UID = '1.2.840.10008.5.1.4.34.5.1';

/** PS3.4 CC.2.4: the N-EVENT-REPORT Event Type IDs. */
export const UPS_EVENT = { stateReport: 1, cancelRequested: 2, progressReport: 3, scpStatusChange: 4, assigned: 5 } as const;

export function attr(keyword: string, ...values: unknown[]): [string, DicomJsonAttribute] {
  const t = tag(keyword);
  const vr = vrOf(t) ?? 'UN';
  return [t, values.length ? { vr, Value: values } : { vr }];
}

/** A dataset from [keyword, values...] pairs built with attr(). */
export function dataset(...attrs: Array<[string, DicomJsonAttribute]>): DicomJsonDataset {
  return Object.fromEntries(attrs);
}

/** The first value of an attribute as text (PN: its Alphabetic group), undefined when absent. */
export function text(ds: DicomJsonDataset, keyword: string): string | undefined {
  const v = ds[tag(keyword)]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') {
    const pn = (v as { Alphabetic?: unknown }).Alphabetic;
    return typeof pn === 'string' ? pn : undefined;
  }
  return String(v);
}

/** The items of a sequence (none when absent). */
export function items(ds: DicomJsonDataset, keyword: string): DicomJsonDataset[] {
  const v = ds[tag(keyword)]?.Value;
  return Array.isArray(v) ? (v.filter((x) => x && typeof x === 'object') as DicomJsonDataset[]) : [];
}

export function isDataset(x: unknown): x is DicomJsonDataset {
  if (!x || typeof x !== 'object' || Array.isArray(x)) return false;
  return Object.entries(x).every(
    ([k, v]) => /^[0-9A-Fa-f]{8}$/.test(k) && !!v && typeof v === 'object' && typeof (v as { vr?: unknown }).vr === 'string',
  );
}

/** DICOM JSON payloads come as one dataset or an array of one (PS3.18 F.2). */
export function singleDataset(body: unknown, what: string): DicomJsonDataset {
  const ds = Array.isArray(body) && body.length === 1 ? body[0] : body;
  if (!isDataset(ds))
    throw new UpsError('invalid-input', 0xa900, WARNINGS.stateInconsistent, `${what}: the payload is not a DICOM JSON dataset`);
  // Tags as DICOM JSON names them: upper-case hex.
  return Object.fromEntries(Object.entries(ds).map(([k, v]) => [k.toUpperCase(), v]));
}

const DT = /^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?$/;

/** A DT value of now, to the second (UTC, with its offset). */
export function dtNow(d = new Date()): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}+0000`;
}

/**
 * The attributes a Create must carry (PS3.4 Table CC.2.5-3, Type 1 in the N-CREATE column, the
 * ones this node reads); throws a UpsError 400 naming what is missing or wrong.
 */
export function checkCreate(ds: DicomJsonDataset): void {
  const bad = (message: string): never => {
    throw new UpsError('invalid-input', 0xa900, WARNINGS.stateInconsistent, message);
  };
  const state = text(ds, 'ProcedureStepState');
  if (state !== 'SCHEDULED') bad(`Procedure Step State (0074,1000) must be SCHEDULED in a Create, not ${state ?? 'absent'}`);
  if (ds[tag('TransactionUID')]) bad('a Create carries no Transaction UID (0008,1195)');
  for (const k of ['ScheduledProcedureStepPriority', 'ProcedureStepLabel', 'ScheduledProcedureStepStartDateTime', 'InputReadinessState']) {
    if (!text(ds, k)) bad(`${k} (${tag(k).slice(0, 4)},${tag(k).slice(4)}) is required in a Create`);
  }
  const start = text(ds, 'ScheduledProcedureStepStartDateTime')!;
  if (!DT.test(start)) bad(`Scheduled Procedure Step Start DateTime "${start}" is not a DT value`);
  const priority = text(ds, 'ScheduledProcedureStepPriority')!;
  if (!['HIGH', 'MEDIUM', 'LOW'].includes(priority)) bad(`Scheduled Procedure Step Priority "${priority}" is not HIGH, MEDIUM or LOW`);
  const readiness = text(ds, 'InputReadinessState')!;
  if (!['READY', 'UNAVAILABLE', 'INCOMPLETE'].includes(readiness))
    bad(`Input Readiness State "${readiness}" is not READY, UNAVAILABLE or INCOMPLETE`);
  for (const item of items(ds, 'InputInformationSequence')) {
    const study = text(item, 'StudyInstanceUID');
    if (study !== undefined && !isValidUid(study)) bad(`Input Information Sequence names an invalid Study Instance UID "${study}"`);
  }
}

/** Attributes no Update may set (PS3.4 CC.2.6.3: the SOP Instance UID, the state and the lock). */
export function checkUpdatePayload(ds: DicomJsonDataset): void {
  for (const k of ['SOPInstanceUID', 'ProcedureStepState', 'TransactionUID', 'SOPClassUID']) {
    if (ds[tag(k)])
      throw new UpsError('invalid-input', DIMSE.scheduledOnlyByCreate, WARNINGS.updateInconsistent, `an Update may not set ${k}`);
  }
}

/** The Study Instance UID the workitem's input names (the first Input Information item that has one). */
export function inputStudy(ds: DicomJsonDataset): string | undefined {
  for (const item of items(ds, 'InputInformationSequence')) {
    const s = text(item, 'StudyInstanceUID');
    if (s) return s;
  }
  return text(ds, 'StudyInstanceUID');
}

export function workitemCode(ds: DicomJsonDataset): { value: string; scheme: string } | undefined {
  const c = items(ds, 'ScheduledWorkitemCodeSequence')[0];
  const value = c && text(c, 'CodeValue');
  const scheme = c && text(c, 'CodingSchemeDesignator');
  return value && scheme ? { value, scheme } : undefined;
}

/** The workitem as Retrieve answers it: no Transaction UID, which only the owner knows (PS3.18 §11.5.3.3). */
export function publicView(ds: DicomJsonDataset): DicomJsonDataset {
  const out = { ...ds };
  delete out[tag('TransactionUID')];
  return out;
}

/** An event report (PS3.4 Table CC.2.4-1, PS3.18 §11.13) as DICOM JSON. */
export function eventReport(workitemUid: string, eventType: number, info: Array<[string, DicomJsonAttribute]>): DicomJsonDataset {
  return dataset(
    attr('AffectedSOPClassUID', UPS_EVENT_SOP_CLASS),
    attr('AffectedSOPInstanceUID', workitemUid),
    attr('EventTypeID', eventType),
    ...info,
  );
}

/** A UPS State Report: the new state and the Input Readiness State. */
export function stateReport(workitemUid: string, state: UpsState, readiness: string, reason?: string): DicomJsonDataset {
  return eventReport(workitemUid, UPS_EVENT.stateReport, [
    attr('ProcedureStepState', state),
    attr('InputReadinessState', readiness),
    ...(reason ? [attr('ReasonForCancellation', reason)] : []),
  ]);
}
