import type { Knex } from 'knex';

/**
 * UPS-RS (PS3.18 §11, PS3.4 Annex CC): Unified Procedure Step workitems, their subscriptions and
 * the event reports sent to subscribers.
 *
 * - ups_workitems: one row per workitem; `dataset` is its DICOM JSON (the one model) and the
 *   columns beside it are what searches match and the state machine needs (state, the owner's
 *   Transaction UID, the matching keys). DT values are kept as DICOM text (YYYYMMDDHHMMSS...),
 *   so ranges compare as strings like the index's DA. analysis_id: the analysis performing it,
 *   when the node is the performer.
 * - ups_subscriptions: an AE title's subscription to one workitem or to all of them (the
 *   well-known Global Subscription UID in workitem_uid); suspended: a global one that gets no
 *   new workitems.
 * - ups_events: every event report, in order, with the workitem change that caused it (same
 *   transaction): the WebSocket channels, in whichever process holds them, read from here.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('ups_workitems', (t) => {
    t.string('sop_instance_uid', 64).primary();
    /** SCHEDULED | IN PROGRESS | COMPLETED | CANCELED */
    t.string('state', 16).notNullable();
    t.string('transaction_uid', 64).nullable();
    t.string('patient_id', 64).nullable();
    t.string('patient_name', 324).nullable();
    t.string('patient_name_upper', 324).nullable();
    t.string('study_instance_uid', 64).nullable();
    t.string('scheduled_start', 26).nullable();
    t.string('priority', 16).nullable();
    t.string('label', 64).nullable();
    t.string('worklist_label', 64).nullable();
    t.string('workitem_code', 16).nullable();
    t.string('workitem_scheme', 16).nullable();
    t.text('dataset').notNullable();
    /** The node claimed it (its Transaction UID is the node's): the node performs it. */
    t.boolean('node_performer').notNullable().defaultTo(false);
    t.bigInteger('analysis_id').nullable();
    t.timestamp('cancel_requested_at', { useTz: true }).nullable();
    t.string('created_by', 128).nullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.index(['state'], 'ups_workitems_state');
    t.index(['study_instance_uid'], 'ups_workitems_study');
    t.index(['analysis_id'], 'ups_workitems_analysis');
  });
  await knex.schema.createTable('ups_subscriptions', (t) => {
    t.increments('id').primary();
    t.string('workitem_uid', 64).notNullable();
    t.string('ae_title', 16).notNullable();
    t.boolean('deletion_lock').notNullable().defaultTo(false);
    t.boolean('suspended').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.unique(['workitem_uid', 'ae_title'], { indexName: 'ups_subscriptions_key' });
  });
  await knex.schema.createTable('ups_events', (t) => {
    t.bigIncrements('id').primary();
    t.string('workitem_uid', 64).notNullable();
    t.integer('event_type').notNullable();
    /** For one subscriber only (the initial State Report of a new subscription); null: every subscriber. */
    t.string('ae_title', 16).nullable();
    /** The event report's DICOM JSON. */
    t.text('report').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.index(['workitem_uid'], 'ups_events_workitem');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('ups_events');
  await knex.schema.dropTableIfExists('ups_subscriptions');
  await knex.schema.dropTableIfExists('ups_workitems');
}
