import type { Knex } from 'knex';

/**
 * AI analyses and what they found. One `medgemma_analyses` row per request (automatic or
 * manual), carrying everything needed to trace a draft back: the model (name, SHA-256,
 * quantization, backend), the prompt (template id, version, hash of the text sent), the images
 * (instance and frame of each), timings and the job that ran it. `findings` and `measurements`
 * hold the structured answer, one row per item, in the model's order.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('medgemma_analyses', (t) => {
    t.increments('id').primary();
    t.string('study_instance_uid', 64).notNullable();
    /** queued | running | succeeded | failed | cancelled */
    t.string('status', 16).notNullable();
    /** primary | comparison | focused */
    t.string('analysis_type', 16).notNullable();
    /** manual | auto */
    t.string('trigger', 16).notNullable();
    t.string('requested_by', 64).nullable();
    t.text('clinical_indication').nullable();
    t.text('focus').nullable();
    t.integer('job_id').nullable();
    t.string('progress_stage', 32).nullable();
    t.integer('progress_percent').nullable();
    // study.last_received_at when requested: an automatic run is due again only after newer arrivals.
    t.string('source_received_at', 40).nullable();
    t.string('series_instance_uid', 64).nullable();
    t.integer('volume_id').nullable();
    t.string('prior_study_instance_uid', 64).nullable();
    t.string('model_name', 256).nullable();
    t.string('model_sha256', 64).nullable();
    t.string('model_quantization', 32).nullable();
    t.string('mmproj_sha256', 64).nullable();
    t.string('backend', 32).nullable();
    t.string('prompt_template_id', 64).nullable();
    t.string('prompt_template_version', 16).nullable();
    t.string('prompt_hash', 64).nullable();
    // The exact text sent (no names or dates by construction): what the hash is of.
    t.text('prompt_text').nullable();
    /** [{index, sopInstanceUid, frameNumber, seriesInstanceUid}] in the order sent to the model. */
    t.text('images').nullable();
    t.text('impression').nullable();
    t.text('comparison').nullable();
    t.text('technical_limitations').nullable();
    t.text('raw_text').nullable();
    t.text('safety_flags').nullable();
    /** {queueWaitMs, selectMs, prepareMs, inferenceMs, promptMs, predictedMs, tokens, tokensPerSecond, totalMs} */
    t.text('timings').nullable();
    t.text('selection').nullable();
    t.text('error').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('started_at', { useTz: true }).nullable();
    t.timestamp('finished_at', { useTz: true }).nullable();
    t.index(['study_instance_uid'], 'analyses_study');
    t.index(['status'], 'analyses_status');
  });

  await knex.schema.createTable('findings', (t) => {
    t.increments('id').primary();
    t.integer('analysis_id').notNullable().references('id').inTable('medgemma_analyses').onDelete('CASCADE');
    t.integer('idx').notNullable();
    t.text('description').notNullable();
    t.string('anatomical_location', 256).nullable();
    t.string('laterality', 16).nullable();
    t.string('category', 64).nullable();
    t.string('severity', 16).nullable();
    t.double('confidence').notNullable();
    /** Indices into the analysis' image list. */
    t.text('image_indices').notNullable();
    t.text('recommendation').nullable();
    /** {imageIndex, box: [x0, y0, x1, y1]} in the prepared image's pixels (see the analysis' images), or null. */
    t.text('region').nullable();
    t.index(['analysis_id'], 'findings_analysis');
  });

  await knex.schema.createTable('measurements', (t) => {
    t.increments('id').primary();
    t.integer('analysis_id').notNullable().references('id').inTable('medgemma_analyses').onDelete('CASCADE');
    t.integer('idx').notNullable();
    t.text('finding').nullable();
    t.string('quantity', 128).notNullable();
    t.double('value').notNullable();
    t.string('unit', 32).notNullable();
    t.index(['analysis_id'], 'measurements_analysis');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('measurements');
  await knex.schema.dropTableIfExists('findings');
  await knex.schema.dropTableIfExists('medgemma_analyses');
}
