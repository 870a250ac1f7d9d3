import type { Knex } from 'knex';
import * as m001 from './001_core_index.js';
import * as m002 from './002_users_audit.js';
import * as m003 from './003_series_metadata.js';
import * as m004 from './004_sequence_items.js';
import * as m005 from './005_study_list_order.js';
import * as m006 from './006_remote_nodes.js';
import * as m007 from './007_forwarding.js';
import * as m008 from './008_volumes.js';
import * as m009 from './009_jobs.js';
import * as m010 from './010_analyses.js';
import * as m011 from './011_reports.js';
import * as m012 from './012_first_admin_bootstrap.js';
import * as m013f from './013_forwarding_as_jobs.js';
import * as m014 from './014_analysis_provenance.js';
import * as m015r from './015_report_per_analysis.js';
import * as m016t from './016_trim_padded_values.js';
import * as m017 from './017_instance_image_attributes.js';
import * as m018u from './018_user_credentials.js';
import * as m021i from './021_integrations.js';
import * as m028s from './028_instance_sha256.js';
import * as m023u from './023_ups_workitems.js';
import * as m029a from './029_audit_export.js';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/**
 * Migrations are listed here rather than discovered on disk, so the compiled node never depends
 * on how knex scans a directory of ESM files. Append new ones; never rename a shipped one.
 */
const migrations: ReadonlyArray<[string, Migration]> = [
  ['001_core_index', m001],
  ['002_users_audit', m002],
  ['003_series_metadata', m003],
  ['004_sequence_items', m004],
  ['005_study_list_order', m005],
  ['006_remote_nodes', m006],
  ['007_forwarding', m007],
  ['008_volumes', m008],
  ['009_jobs', m009],
  ['010_analyses', m010],
  ['011_reports', m011],
  ['012_first_admin_bootstrap', m012],
  ['013_forwarding_as_jobs', m013f],
  ['014_analysis_provenance', m014],
  ['015_report_per_analysis', m015r],
  ['016_trim_padded_values', m016t],
  ['017_instance_image_attributes', m017],
  ['018_user_credentials', m018u],
  ['021_integrations', m021i],
  ['023_ups_workitems', m023u],
  ['028_instance_sha256', m028s],
  ['029_audit_export', m029a],
];

/** Every migration's name, in the order they apply. */
export const migrationNames: readonly string[] = migrations.map(([name]) => name);

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => migrations.map(([name]) => name),
  getMigrationName: (name) => name,
  getMigration: async (name) => {
    const found = migrations.find(([n]) => n === name);
    if (!found) throw new Error(`unknown migration ${name}`);
    return found[1];
  },
};
