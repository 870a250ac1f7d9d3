import { Message } from 'node-hl7-client';
import { HL7_2_5_1 } from 'node-hl7-client/hl7';

/**
 * HL7 v2.5.1 through node-hl7-client: its Message builder writes the segments (it escapes the
 * delimiters in every value it is given) and its parser reads what peers send. The helpers here
 * are the few conversions our messages need: DICOM names and dates into HL7 types, text with line
 * breaks as FT.
 */

export const SENDING_APPLICATION = 'RadiantAI';

/** A new 2.5.1 message with its MSH (MSH-7 in UTC with its offset: the peer may sit in another zone). */
export function newMessage(h: {
  type: [string, string, string];
  controlId: string;
  processingId: 'P' | 'D' | 'T';
  sendingFacility: string | null;
  receivingApplication: string | null;
  receivingFacility: string | null;
  at: Date;
}): Message {
  const m = new Message({
    specification: new HL7_2_5_1(),
    messageHeader: { msh_9_1: h.type[0], msh_9_2: h.type[1], msh_9_3: h.type[2], msh_10: h.controlId, msh_11_1: h.processingId },
  });
  m.set('MSH.3.1', SENDING_APPLICATION);
  if (h.sendingFacility) m.set('MSH.4.1', h.sendingFacility);
  if (h.receivingApplication) m.set('MSH.5.1', h.receivingApplication);
  if (h.receivingFacility) m.set('MSH.6.1', h.receivingFacility);
  m.set('MSH.7', hl7Time(h.at));
  // Names and report text are Unicode (the index keeps them decoded).
  m.set('MSH.18', 'UNICODE UTF-8');
  return m;
}

/** A parsed message (what a peer sent); throws on text that is not one. */
export function parseMessage(text: string): Message {
  return new Message({ text });
}

/** DTM with seconds and offset, in UTC: 20240131143000+0000. */
export function hl7Time(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}+0000`;
}

/** DICOM DA (and TM) as HL7 DTM: 20240131, 20240131143000 (TM's fraction dropped). */
export function dicomDateTime(date: string | null, time: string | null): string | null {
  if (!date || !/^\d{8}$/.test(date)) return null;
  const t = (time ?? '').split('.')[0]!.replace(/\D/g, '');
  return t.length >= 4 ? `${date}${t.slice(0, 6)}` : date;
}

/** DICOM PN (family^given^middle^prefix^suffix) as XPN components (family, given, middle, suffix, prefix). */
export function xpn(pn: string | null): string[] {
  const alphabetic = (pn ?? '').split('=')[0]!;
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = alphabetic.split('^');
  return [family, given, middle, suffix, prefix];
}

/** DICOM Patient's Sex (M, F, O) as HL7 table 0001; anything else is U. */
export function administrativeSex(sex: string | null): string {
  const s = (sex ?? '').trim().toUpperCase();
  return s === 'M' || s === 'F' || s === 'O' ? s : 'U';
}

/**
 * A value written as it is, not escaped again: FT text whose lines were escaped one by one and
 * joined with the \.br\ formatting command (node-hl7-client escapes every string it is given).
 */
function raw(text: string): { toString(): string } {
  return { toString: () => text };
}

/** Text with line breaks as FT: each line escaped, lines joined with \.br\. */
export function formattedText(m: Message, text: string): { toString(): string } {
  return raw(
    text
      .split(/\r\n|\r|\n/)
      .map((line) => m.escape(line))
      .join('\\.br\\'),
  );
}
