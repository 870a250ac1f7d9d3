import type { Message } from 'node-hl7-client';
import type { OrderInput } from '../../catalog/orders.js';

/**
 * What an order message (ORM^O01, OMI^O23) says, for the index (src/catalog/orders.ts). The
 * Accession Number is IPC-1 (OMI^O23, the IHE Scheduled Workflow's place), else OBR-18 (Placer
 * Field 1, where ORM^O01 senders put it), else the filler order number; the clinical indication is
 * OBR-31 (reason for study), else OBR-13 (relevant clinical information).
 */

export const ORDER_TYPES = ['ORM^O01', 'OMI^O23'] as const;

/** Why an order cannot be taken: the ACK code and HL7 table 0357 error code it is answered with. */
export class OrderMessageError extends Error {
  constructor(
    readonly ack: 'AE' | 'AR',
    readonly errorCode: '100' | '101' | '102' | '200' | '207',
    message: string,
  ) {
    super(message);
    this.name = 'OrderMessageError';
  }
}

function get(m: Message, path: string): string {
  return m.get(path).toString().trim();
}

const clip = (s: string, n: number): string | null => (s ? s.slice(0, n) : null);

/** "Given Family (ID)" of an XCN, or whichever parts it has. */
function person(m: Message, field: string): string {
  const name = [get(m, `${field}.3`), get(m, `${field}.2`)].filter(Boolean).join(' ');
  const id = get(m, `${field}.1`);
  return name && id ? `${name} (${id})` : name || id;
}

export function messageType(m: Message): string {
  return `${get(m, 'MSH.9.1')}^${get(m, 'MSH.9.2')}`.toUpperCase();
}

export function orderFromMessage(m: Message, text: string): OrderInput {
  const type = messageType(m);
  if (!(ORDER_TYPES as readonly string[]).includes(type))
    throw new OrderMessageError('AR', '200', `unsupported message type ${type}: this listener takes ${ORDER_TYPES.join(' and ')}`);
  const controlId = get(m, 'MSH.10');
  if (!controlId) throw new OrderMessageError('AE', '101', 'MSH-10 (message control ID) is missing');
  if (!m.get('OBR').toString() && !m.get('ORC').toString()) throw new OrderMessageError('AE', '100', 'the order has no ORC or OBR segment');
  const placer = get(m, 'ORC.2.1') || get(m, 'OBR.2.1');
  const filler = get(m, 'ORC.3.1') || get(m, 'OBR.3.1');
  const accession = get(m, 'IPC.1.1') || get(m, 'OBR.18') || filler;
  if (!accession) throw new OrderMessageError('AE', '101', 'no Accession Number: IPC-1, OBR-18 and the filler order number are empty');
  if (accession.length > 16) throw new OrderMessageError('AE', '102', 'the Accession Number is longer than 16 characters (DICOM SH)');
  const code = get(m, 'OBR.4.1');
  const procedureText = get(m, 'OBR.4.2') || get(m, 'OBR.4.5');
  const procedure = procedureText && code ? `${procedureText} (${code})` : procedureText || code;
  const indication = get(m, 'OBR.31.2') || get(m, 'OBR.31.1') || get(m, 'OBR.13');
  return {
    accessionNumber: accession,
    placerOrderNumber: clip(placer, 64),
    fillerOrderNumber: clip(filler, 64),
    orderControl: clip(get(m, 'ORC.1').toUpperCase(), 8),
    requestedProcedure: clip(procedure, 512),
    clinicalIndication: clip(indication, 2000),
    orderingProvider: clip(person(m, 'ORC.12') || person(m, 'OBR.16'), 512),
    patientId: clip(get(m, 'PID.3.1'), 64),
    messageType: type,
    controlId: controlId.slice(0, 64),
    sendingApplication: clip(get(m, 'MSH.3.1'), 227),
    message: text,
  };
}
