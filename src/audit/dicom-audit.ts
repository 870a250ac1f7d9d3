import type { AuditRow } from './audit.js';

/**
 * An audit row as a DICOM audit message (PS3.15 Annex A.5, the XML schema of A.5.1 that IHE ATNA
 * audit repositories read; RFC 3881's element names): EventIdentification, the active
 * participants (who asked, and this node), AuditSourceIdentification and the participant
 * objects (the study by its UID, the patient by their ID). Built from the row alone: it holds
 * identifiers, never names, so neither does the message.
 */

export interface AuditSource {
  /** AuditSourceID: this node (its AE title). */
  sourceId: string;
  /** AuditEnterpriseSiteID: the hospital (INSTITUTION_NAME), when set. */
  siteId?: string | null;
}

interface Code {
  code: string;
  system: string;
  meaning: string;
}

const dcm = (code: string, meaning: string): Code => ({ code, system: 'DCM', meaning });

/** PS3.16 CID 400 (Audit Event ID) and CID 401 (Audit Event Type Code) terms the node uses. */
const EVENT = {
  applicationActivity: dcm('110100', 'Application Activity'),
  auditLogUsed: dcm('110101', 'Audit Log Used'),
  instancesAccessed: dcm('110103', 'DICOM Instances Accessed'),
  instancesTransferred: dcm('110104', 'DICOM Instances Transferred'),
  studyDeleted: dcm('110105', 'DICOM Study Deleted'),
  export: dcm('110106', 'Export'),
  import: dcm('110107', 'Import'),
  orderRecord: dcm('110109', 'Order Record'),
  patientRecord: dcm('110110', 'Patient Record'),
  procedureRecord: dcm('110111', 'Procedure Record'),
  query: dcm('110112', 'Query'),
  securityAlert: dcm('110113', 'Security Alert'),
  userAuthentication: dcm('110114', 'User Authentication'),
} as const;
const LOGIN = dcm('110122', 'Login');
const ROLE_SOURCE = dcm('110153', 'Source Role ID');
const ROLE_DESTINATION = dcm('110152', 'Destination Role ID');
const ROLE_APPLICATION = dcm('110150', 'Application');

type ActionCode = 'C' | 'R' | 'U' | 'D' | 'E';

interface EventKind {
  id: Code;
  action: ActionCode;
  type?: Code;
  /** Which way the data went, for the participants' roles: in (the caller sends), out (the node sends). */
  flow?: 'in' | 'out';
}

/** The event an audit row records, from its action (see the actions in README, Audit trail). */
export function eventOf(action: string): EventKind {
  if (action === 'auth.login' || action === 'auth.lockout') return { id: EVENT.userAuthentication, action: 'E', type: LOGIN };
  if (action === 'dimse.association-rejected') return { id: EVENT.securityAlert, action: 'E' };
  if (['dicomweb.stow', 'study.upload', 'dimse.association'].includes(action)) return { id: EVENT.import, action: 'C', flow: 'in' };
  if (['dicomweb.qido', 'dimse.find', 'study.list', 'patient.list'].includes(action)) return { id: EVENT.query, action: 'E' };
  if (['dimse.move', 'dimse.get', 'forward.send'].includes(action)) return { id: EVENT.instancesTransferred, action: 'R', flow: 'out' };
  if (action === 'report.decisions.export') return { id: EVENT.export, action: 'R', flow: 'out' };
  if (action === 'audit.read') return { id: EVENT.auditLogUsed, action: 'R' };
  if (action === 'dicomweb.delete') return { id: EVENT.studyDeleted, action: 'D' };
  if (action.startsWith('patient.')) return { id: EVENT.patientRecord, action: verbOf(action) };
  if (action === 'hl7.order.received') return { id: EVENT.orderRecord, action: 'C', flow: 'in' };
  if (action.startsWith('report.') || ['create', 'edit', 'sign'].includes(action))
    return { id: EVENT.procedureRecord, action: verbOf(action) };
  if (/^(dicomweb\.(retrieve|metadata|rendered)|wado\.uri|study\.read|analysis\.|ai\.analysis)/.test(action))
    return { id: EVENT.instancesAccessed, action: 'R', flow: 'out' };
  return { id: EVENT.applicationActivity, action: 'E' };
}

function verbOf(action: string): ActionCode {
  const verb = action.slice(action.lastIndexOf('.') + 1);
  if (/^(create|created|register|request|stow|upload|received)$/.test(verb)) return 'C';
  if (/^(read|list|history|versions|diff|metadata|retrieve)$/.test(verb)) return 'R';
  if (/^(update|edit|edited|amend|sign|published|auto_publish|key_image)$/.test(verb)) return 'U';
  if (/^(delete|deleted)$/.test(verb)) return 'D';
  return 'E';
}

/** PS3.15 A.5.3 EventOutcomeIndicator: 0 success, 4 minor failure, 8 serious failure (a server error). */
function outcomeOf(row: AuditRow): { indicator: '0' | '4' | '8'; description?: string } {
  if (row.outcome === 'success') return { indicator: '0' };
  if (row.outcome === 'started') return { indicator: '4', description: 'not finished (the request never ended)' };
  return {
    indicator: row.status !== undefined && row.status >= 500 ? '8' : '4',
    description: `failed${row.status ? ` (${row.status})` : ''}`,
  };
}

/** XML 1.0 text: markup escaped, characters XML cannot carry dropped. */
function esc(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function attrs(a: Record<string, string | undefined>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => ` ${k}="${esc(v!)}"`)
    .join('');
}

function coded(element: string, c: Code): string {
  return `<${element}${attrs({ 'csd-code': c.code, codeSystemName: c.system, originalText: c.meaning })}/>`;
}

/** The address part of "host:port" (IPv4, or a bracketless IPv6 with its port last). */
function hostOf(peer: string | undefined): string | undefined {
  if (!peer) return undefined;
  const m = /^(.*):(\d+)$/.exec(peer);
  return (m ? m[1]! : peer).replace(/^::ffff:/, '');
}

function participant(userId: string, requestor: boolean, extra: { alt?: string; address?: string; role?: Code }): string {
  const a = attrs({
    UserID: userId,
    AlternativeUserID: extra.alt,
    UserIsRequestor: String(requestor),
    NetworkAccessPointID: extra.address,
    // 2: an IP address (A.5.2.1 NetworkAccessPointTypeCode).
    NetworkAccessPointTypeCode: extra.address ? '2' : undefined,
  });
  return extra.role ? `<ActiveParticipant${a}>${coded('RoleIDCode', extra.role)}</ActiveParticipant>` : `<ActiveParticipant${a}/>`;
}

function studyObject(uid: string): string {
  // TypeCode 2 (system object), role 3 (report: a study as a whole), ID type 110180 Study Instance UID.
  const a = attrs({ ParticipantObjectID: uid, ParticipantObjectTypeCode: '2', ParticipantObjectTypeCodeRole: '3' });
  return `<ParticipantObjectIdentification${a}>${coded('ParticipantObjectIDTypeCode', dcm('110180', 'Study Instance UID'))}</ParticipantObjectIdentification>`;
}

function patientObject(id: string): string {
  // TypeCode 1 (person), role 1 (patient), ID type RFC 3881 code 2 (patient number). No name (A.5.2.5).
  const a = attrs({ ParticipantObjectID: id, ParticipantObjectTypeCode: '1', ParticipantObjectTypeCodeRole: '1' });
  const idType = coded('ParticipantObjectIDTypeCode', { code: '2', system: 'RFC-3881', meaning: 'Patient Number' });
  return `<ParticipantObjectIdentification${a}>${idType}</ParticipantObjectIdentification>`;
}

function listed(details: Record<string, unknown> | null, key: string): string[] {
  const v = details?.[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : [];
}

/** One AuditMessage element (no XML declaration: see auditMessageDocument). */
export function auditMessageXml(row: AuditRow, source: AuditSource): string {
  const event = eventOf(row.action);
  const outcome = outcomeOf(row);
  const eventAttrs = attrs({ EventActionCode: event.action, EventDateTime: row.at, EventOutcomeIndicator: outcome.indicator });
  const eventBody =
    coded('EventID', event.id) +
    (event.type ? coded('EventTypeCode', event.type) : '') +
    (outcome.description ? `<EventOutcomeDescription>${esc(`${row.action}: ${outcome.description}`)}</EventOutcomeDescription>` : '');

  // The requestor (a user, a calling AE, anyone before login, or the node's own work) and this node.
  const address = hostOf(row.peer);
  const requestorId = row.actor ?? (row.actorType === 'system' ? source.sourceId : row.actorType === 'anonymous' ? 'anonymous' : 'unknown');
  const inbound = event.flow === 'in';
  const outbound = event.flow === 'out';
  const participants = [
    participant(requestorId, true, {
      alt: row.actorType === 'ae' ? `AETITLES=${row.actor ?? ''}` : undefined,
      address,
      role: inbound ? ROLE_SOURCE : outbound ? ROLE_DESTINATION : undefined,
    }),
    participant(source.sourceId, false, {
      alt: `AETITLES=${source.sourceId}`,
      role: inbound ? ROLE_DESTINATION : outbound ? ROLE_SOURCE : ROLE_APPLICATION,
    }),
  ];

  const sourceXml =
    `<AuditSourceIdentification${attrs({ AuditEnterpriseSiteID: source.siteId ?? undefined, AuditSourceID: source.sourceId })}>` +
    // 4: application server process (A.5.2.4 AuditSourceTypeCode).
    coded('AuditSourceTypeCode', { code: '4', system: 'DCM', meaning: 'Application Server Process' }) +
    '</AuditSourceIdentification>';

  const studies = new Set([...(row.studyInstanceUid ? [row.studyInstanceUid] : []), ...listed(row.details, 'studies')]);
  const patients = new Set([...(row.patientId ? [row.patientId] : []), ...listed(row.details, 'patients')]);
  const objects = [...[...studies].map(studyObject), ...[...patients].map(patientObject)];

  return (
    `<AuditMessage><EventIdentification${eventAttrs}>${eventBody}</EventIdentification>` +
    participants.join('') +
    sourceXml +
    objects.join('') +
    '</AuditMessage>'
  );
}

/** A standalone message (what one syslog message carries). */
export function auditMessageDocument(row: AuditRow, source: AuditSource): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${auditMessageXml(row, source)}`;
}

/** Several messages in one document (the API export): an <AuditMessages> list of AuditMessage elements. */
export function auditMessagesDocument(rows: readonly AuditRow[], source: AuditSource): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<AuditMessages>\n${rows.map((r) => `${auditMessageXml(r, source)}\n`).join('')}</AuditMessages>\n`;
}
