import type { Knex } from 'knex';

/**
 * QIDO-RS default attributes the index did not hold (PS3.18 Table 6.7.1-2/-2a): Bits Allocated
 * per instance, Timezone Offset From UTC per study (SOP Common, shared by a study's instances).
 *
 * Backfill: from the series metadata cache (migration 003), which holds every attribute of the
 * instances of each cached series; instances of series never cached keep NULL until they are
 * stored again (the files are in blob storage, which a migration does not read). The cache is
 * then emptied: its format changed (Pixel Data's BulkDataURI is now `…/bulkdata/7FE00010`), and
 * it is rebuilt on the next metadata request.
 */

type Json = Record<string, { Value?: unknown[] } | undefined>;

function first(ds: Json, tag: string): unknown {
  return ds[tag]?.Value?.[0];
}

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('instances', (t) => {
    t.integer('bits_allocated');
  });
  await knex.schema.alterTable('studies', (t) => {
    t.string('timezone_offset_from_utc', 16);
  });

  const rows = (await knex('series_metadata as m')
    .join('series as se', 'se.series_instance_uid', 'm.series_instance_uid')
    .select('m.json', 'se.study_pk')) as Array<{ json: string; study_pk: number | string }>;
  for (const row of rows) {
    let datasets: Json[];
    try {
      datasets = JSON.parse(row.json) as Json[];
    } catch {
      continue; // a damaged cache entry: nothing to learn from it
    }
    let tz: string | undefined;
    for (const ds of datasets) {
      const sop = first(ds, '00080018');
      const bits = first(ds, '00280100');
      if (typeof sop === 'string' && typeof bits === 'number' && Number.isInteger(bits)) {
        await knex('instances').where('sop_instance_uid', sop).update({ bits_allocated: bits });
      }
      const offset = first(ds, '00080201');
      if (typeof offset === 'string' && /^[+-]\d{4}$/.test(offset.trim())) tz ??= offset.trim();
    }
    if (tz) await knex('studies').where('id', Number(row.study_pk)).update({ timezone_offset_from_utc: tz });
  }
  await knex('series_metadata').del();
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('instances', (t) => {
    t.dropColumn('bits_allocated');
  });
  await knex.schema.alterTable('studies', (t) => {
    t.dropColumn('timezone_offset_from_utc');
  });
}
