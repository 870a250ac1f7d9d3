import type { Db } from '../db/connection.js';
import { isoTimestamp } from './sql.js';

/**
 * Orders received over the HL7 listener (ORM^O01, OMI^O23; migrations/021_integrations.ts): what
 * the RIS asked for, matched to studies by Accession Number. Each message is a row (an order and
 * its later changes or cancellation), the latest one standing for the order.
 */

export interface OrderInput {
  accessionNumber: string;
  placerOrderNumber: string | null;
  fillerOrderNumber: string | null;
  orderControl: string | null;
  requestedProcedure: string | null;
  clinicalIndication: string | null;
  orderingProvider: string | null;
  patientId: string | null;
  messageType: string;
  controlId: string;
  sendingApplication: string | null;
  /** The message as received (PHI). */
  message: string;
}

export interface Order extends Omit<OrderInput, 'message'> {
  id: number;
  receivedAt: string;
}

interface Row {
  id: number | string;
  accession_number: string;
  placer_order_number: string | null;
  filler_order_number: string | null;
  order_control: string | null;
  requested_procedure: string | null;
  clinical_indication: string | null;
  ordering_provider: string | null;
  patient_id: string | null;
  message_type: string;
  control_id: string;
  sending_application: string | null;
  received_at: string | Date;
}

/** ORC-1 codes that withdraw an order (HL7 table 0119). */
const WITHDRAWN = ['CA', 'DC', 'OC', 'CR', 'OD'];

export async function insertOrder(db: Db, o: OrderInput, now = new Date()): Promise<number> {
  const [row] = (await db('hl7_orders')
    .insert({
      accession_number: o.accessionNumber,
      placer_order_number: o.placerOrderNumber,
      filler_order_number: o.fillerOrderNumber,
      order_control: o.orderControl,
      requested_procedure: o.requestedProcedure,
      clinical_indication: o.clinicalIndication,
      ordering_provider: o.orderingProvider,
      patient_id: o.patientId,
      message_type: o.messageType,
      control_id: o.controlId,
      sending_application: o.sendingApplication,
      message: o.message,
      received_at: now.toISOString(),
    })
    .returning('id')) as Array<{ id: number | string } | number>;
  return Number(typeof row === 'object' ? row.id : row);
}

/** The order standing for this Accession Number: its latest message, unless that one withdrew it. */
export async function orderForAccession(db: Db, accessionNumber: string): Promise<Order | undefined> {
  const r = (await db('hl7_orders')
    .where({ accession_number: accessionNumber })
    .orderBy('id', 'desc')
    .first(
      'id',
      'accession_number',
      'placer_order_number',
      'filler_order_number',
      'order_control',
      'requested_procedure',
      'clinical_indication',
      'ordering_provider',
      'patient_id',
      'message_type',
      'control_id',
      'sending_application',
      'received_at',
    )) as Row | undefined;
  if (!r || WITHDRAWN.includes((r.order_control ?? '').toUpperCase())) return undefined;
  return {
    id: Number(r.id),
    accessionNumber: r.accession_number,
    placerOrderNumber: r.placer_order_number,
    fillerOrderNumber: r.filler_order_number,
    orderControl: r.order_control,
    requestedProcedure: r.requested_procedure,
    clinicalIndication: r.clinical_indication,
    orderingProvider: r.ordering_provider,
    patientId: r.patient_id,
    messageType: r.message_type,
    controlId: r.control_id,
    sendingApplication: r.sending_application,
    receivedAt: isoTimestamp(r.received_at)!,
  };
}
