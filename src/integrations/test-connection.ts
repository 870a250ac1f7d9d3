import type { Integration } from '../catalog/integrations.js';
import { errorMessage } from '../errors.js';
import { newControlId } from './hl7-send.js';
import { MllpError, sendMllp } from './hl7/mllp-client.js';
import { buildTestMessage } from './hl7/oru.js';

/**
 * The test button (POST /api/integrations/:id/test): an MLLP integration is sent a test message
 * (MSH-11 D, no result in it) that must come back ACKed AA; a FHIR server is asked for its
 * CapabilityStatement (GET [base]/metadata).
 */

export interface TestOutcome {
  ok: boolean;
  /** MLLP: MSA-1; FHIR: the HTTP status. */
  code: string | null;
  /** What the peer said (MSA-3 / ERR-8, the FHIR server's software), or why it failed. */
  detail: string | null;
  ms: number;
}

async function testMllp(node: { aeTitle: string; institutionName: string | null }, i: Integration): Promise<Omit<TestOutcome, 'ms'>> {
  const text = buildTestMessage({
    controlId: newControlId('T'),
    at: new Date(),
    sendingFacility: node.institutionName ?? node.aeTitle,
    receivingApplication: i.receivingApplication,
    receivingFacility: i.receivingFacility,
  });
  if (!i.host || !i.port) throw new MllpError('no host and port');
  const ack = await sendMllp({ host: i.host, port: i.port, tls: i.tls, timeoutMs: i.timeoutMs }, text);
  return { ok: ack.code === 'AA' || ack.code === 'CA', code: ack.code, detail: ack.text || null };
}

async function testFhir(i: Integration): Promise<Omit<TestOutcome, 'ms'>> {
  if (!i.baseUrl) throw new Error('no base URL');
  const res = await fetch(`${i.baseUrl.replace(/\/+$/, '')}/metadata`, {
    headers: { accept: 'application/fhir+json', ...(i.bearerToken ? { authorization: `Bearer ${i.bearerToken}` } : {}) },
    signal: AbortSignal.timeout(i.timeoutMs),
  });
  const body = (await res.json().catch(() => null)) as { resourceType?: unknown; software?: { name?: unknown } } | null;
  const capability = body?.resourceType === 'CapabilityStatement';
  const software = typeof body?.software?.name === 'string' ? body.software.name : null;
  return {
    ok: res.ok && capability,
    code: String(res.status),
    detail: capability ? software : `HTTP ${res.status}: the answer is not a CapabilityStatement`,
  };
}

export async function testIntegration(node: { aeTitle: string; institutionName: string | null }, i: Integration): Promise<TestOutcome> {
  const started = Date.now();
  try {
    const r = i.kind === 'fhir' ? await testFhir(i) : await testMllp(node, i);
    return { ...r, ms: Date.now() - started };
  } catch (err) {
    return { ok: false, code: null, detail: errorMessage(err), ms: Date.now() - started };
  }
}
