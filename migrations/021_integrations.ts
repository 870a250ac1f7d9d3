import type { Knex } from 'knex';

/**
 * Hospital integrations (issue 19): the outbound endpoints results are sent to (`integrations`:
 * an HL7 v2 RIS over MLLP, a FHIR server), the delivery log of what was sent to each
 * (`integration_deliveries`: the message as sent and the peer's answer, kept for audit; the
 * sending itself is a job of the one job runner), and the orders received over the HL7 listener
 * (`hl7_orders`, ORM^O01 / OMI^O23), matched to studies by Accession Number.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('integrations', (t) => {
    t.increments('id').primary();
    t.string('name', 128).notNullable().unique();
    /** 'hl7-mllp' | 'fhir'. */
    t.string('kind', 16).notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    /** JSON array of what sends: 'sign' (signed and amended versions), 'draft' (the AI draft when published). */
    t.string('triggers', 255).notNullable();
    t.integer('timeout_ms').notNullable();
    // hl7-mllp
    t.string('host', 255).nullable();
    t.integer('port').nullable();
    t.boolean('tls').notNullable().defaultTo(false);
    t.string('receiving_application', 227).nullable();
    t.string('receiving_facility', 227).nullable();
    // fhir
    t.string('base_url', 1024).nullable();
    /** Sent as "Authorization: Bearer …"; never shown by the API (as remote_nodes.stow_authorization). */
    t.text('bearer_token').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('integration_deliveries', (t) => {
    t.bigIncrements('id').primary();
    t.integer('integration_id').notNullable().references('id').inTable('integrations').onDelete('CASCADE');
    t.integer('report_id').nullable();
    t.integer('report_version').nullable();
    /** 'sign' | 'draft' (what caused it). */
    t.string('trigger', 16).notNullable();
    /** 'queued' → 'delivered', or 'failed' once the attempts ran out or the peer rejected it (the dead letter). */
    t.string('status', 16).notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    /** The current job sending it (a retry queues a new one). */
    t.bigInteger('job_id').nullable();
    /** HL7: MSH-10; FHIR: the resource id. */
    t.string('message_id', 64).nullable();
    /** The message as sent (PHI: kept in the index for audit, never logged). */
    t.text('payload').nullable();
    /** The peer's answer as received (the ACK). */
    t.text('response').nullable();
    /** HL7: MSA-1 (AA, AE, AR); FHIR: the HTTP status. */
    t.string('response_code', 16).nullable();
    t.text('error').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('last_attempt_at', { useTz: true }).nullable();
    t.timestamp('delivered_at', { useTz: true }).nullable();
    t.index(['integration_id', 'id']);
    t.index(['report_id']);
  });
  await knex.schema.createTable('hl7_orders', (t) => {
    t.bigIncrements('id').primary();
    t.string('accession_number', 64).notNullable();
    t.string('placer_order_number', 64).nullable();
    t.string('filler_order_number', 64).nullable();
    /** ORC-1: NW, XO, CA… A cancelled order (CA, DC, OC) no longer gives a study its indication. */
    t.string('order_control', 8).nullable();
    t.string('requested_procedure', 512).nullable();
    /** OBR-31 reason for study, else OBR-13 relevant clinical information. */
    t.text('clinical_indication').nullable();
    t.string('ordering_provider', 512).nullable();
    t.string('patient_id', 64).nullable();
    /** ORM^O01 or OMI^O23, and MSH-10. */
    t.string('message_type', 32).notNullable();
    t.string('control_id', 64).notNullable();
    t.string('sending_application', 227).nullable();
    /** The message as received (PHI: in the index for audit, never logged). */
    t.text('message').notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable();
    t.index(['accession_number', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('hl7_orders');
  await knex.schema.dropTableIfExists('integration_deliveries');
  await knex.schema.dropTableIfExists('integrations');
}
