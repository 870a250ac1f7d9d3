import type { Knex } from 'knex';
import { INDEXED_SEQUENCES, ITEM_VALUE_MAX, ITEMS_MAX, type SequenceItems } from '../dicom/indexed-sequences.js';

/**
 * Writes the sequence_items rows of one instance (migration 004), inside the transaction that
 * writes its patient/study/series/instance rows. Like the other study and series attributes, the
 * latest instance's items replace what the study or series had: a re-sent instance with a
 * corrected request must not leave the old one matchable. Deletes need nothing here: the rows
 * cascade with their series and study.
 */
export async function writeSequenceItems(
  trx: Knex.Transaction,
  sequences: SequenceItems,
  owner: { studyPk: number; seriesPk: number },
  levels: { series: boolean; study: boolean } = { series: true, study: true },
): Promise<void> {
  const rows: Array<Record<string, unknown>> = [];
  const replaced = INDEXED_SEQUENCES.filter((seq) => levels[seq.level]);
  if (replaced.length === 0) return;
  // The items each sequence had go in one statement (one round trip of the index transaction).
  await trx('sequence_items')
    .where((w) => {
      for (const seq of replaced) {
        w.orWhere((one) => {
          one.where('sequence_tag', seq.tag);
          if (seq.level === 'series') one.where('series_pk', owner.seriesPk);
          else one.where('study_pk', owner.studyPk).whereNull('series_pk');
        });
      }
    })
    .delete();
  for (const seq of replaced) {
    const items = (sequences[seq.tag] ?? []).slice(0, ITEMS_MAX);
    items.forEach((item, index) => {
      for (const a of seq.items) {
        const v = item[a.tag];
        if (v === undefined || v === '') continue;
        rows.push({
          study_pk: owner.studyPk,
          series_pk: seq.level === 'series' ? owner.seriesPk : null,
          sequence_tag: seq.tag,
          item_index: index,
          item_tag: a.tag,
          value: v.slice(0, ITEM_VALUE_MAX),
        });
      }
    });
  }
  if (rows.length) await trx('sequence_items').insert(rows);
}
