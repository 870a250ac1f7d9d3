import path from 'node:path';
import { createDb, migrateLatest, type Db } from '../src/db/connection.js';
import { generateIndex, type GeneratedIndex } from './index-generator.js';

/**
 * QIDO-RS at scale: the queries OHIF's study list and viewer send (limit=101, fuzzymatching),
 * timed over HTTP against a node whose index was filled by index-generator.ts. The node, token
 * and timing helpers come from bench.ts; this module knows the index and the queries.
 */

export interface ScaleQuery {
  label: string;
  path: string;
}

/** The sqlite file the node uses for DATA_DIR (config.ts's default). */
export async function buildSqliteIndex(dataDir: string, studies: number): Promise<GeneratedIndex> {
  const db = createDb({ client: 'sqlite', filename: path.join(dataDir, 'radiant.sqlite') });
  try {
    return await build(db, studies);
  } finally {
    await db.destroy();
  }
}

export async function buildPostgresIndex(url: string, studies: number): Promise<GeneratedIndex> {
  const db = createDb({ client: 'pg', connection: url, poolMax: 2 });
  try {
    return await build(db, studies);
  } finally {
    await db.destroy();
  }
}

async function build(db: Db, studies: number): Promise<GeneratedIndex> {
  await migrateLatest(db);
  return generateIndex(db, { studies });
}

export function scaleQueries(g: GeneratedIndex): ScaleQuery[] {
  const ohif = 'limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060';
  return [
    { label: 'studies, PatientName wildcard', path: `/studies?${ohif}&PatientName=SMI*` },
    {
      label: 'studies, PatientName fuzzy',
      path: `/studies?limit=101&offset=0&fuzzymatching=true&includefield=00081030%2C00080060&PatientName=john`,
    },
    { label: 'studies, PatientID', path: `/studies?${ohif}&PatientID=${g.sample.patientId}` },
    { label: 'studies, StudyDate range (1 month)', path: `/studies?${ohif}&StudyDate=20200101-20200131` },
    { label: 'studies, OHIF default (all dates)', path: `/studies?${ohif}&StudyDate=19700102-20991231` },
    { label: 'studies, ModalitiesInStudy', path: `/studies?${ohif}&ModalitiesInStudy=MR` },
    { label: 'studies, StudyInstanceUID', path: `/studies?${ohif}&StudyInstanceUID=${g.sample.studyInstanceUid}` },
    { label: 'series of a study', path: `/studies/${g.sample.studyInstanceUid}/series?includefield=all` },
    {
      label: 'instances of a series',
      path: `/studies/${g.sample.studyInstanceUid}/series/${g.sample.seriesInstanceUid}/instances?limit=101`,
    },
    { label: 'series, RequestedProcedureID (sequence)', path: `/series?limit=101&00400275.00401001=${g.sample.requestedProcedureId}` },
  ];
}
