import { indexInstanceIn, type InstanceRecord } from '../../src/catalog/catalog.js';
import type { Db } from '../../src/db/connection.js';
import { INDEXED_SEQUENCES, type SequenceItems } from '../../src/dicom/indexed-sequences.js';
import { seededUniform } from '../../fixtures/random.js';

/**
 * A deterministic synthetic index for query tests: studies with `^`-component names (some
 * non-ASCII, some with `_`/`%`, mixed case), dates across years, accession numbers, CT/MR/CR/SR
 * series. The generated data is returned so tests compute expected matches in plain JS.
 */

export interface GenSeries {
  seriesInstanceUid: string;
  modality: string;
  seriesNumber: number;
  seriesDescription: string;
  instances: Array<{ sopInstanceUid: string; sopClassUid: string; instanceNumber: number; rows: number; columns: number }>;
  /** Request Attributes Sequence items (empty: the series has none). */
  requestAttributes: Array<{ RequestedProcedureID?: string; ScheduledProcedureStepID?: string; AccessionNumber?: string }>;
}

export interface GenStudy {
  studyInstanceUid: string;
  patientId: string;
  patientName: string;
  patientBirthDate: string;
  patientSex: string;
  studyDate: string;
  studyTime: string;
  accessionNumber: string;
  studyDescription: string;
  referringPhysicianName: string;
  series: GenSeries[];
  /** Sorted distinct modalities, as the index keeps them. */
  modalities: string[];
  /** Procedure Code Sequence items (empty: the study has none). */
  procedureCodes: Array<{ CodeValue: string; CodingSchemeDesignator: string; CodeMeaning?: string }>;
}

const FAMILY = [
  'SMITH',
  'Doe',
  'MÜLLER',
  'Núñez',
  "O'BRIEN",
  'O_BRIEN',
  'OXBRIEN',
  'PER%CENT',
  'PERXCENT',
  'van der Berg',
  'Zhang',
  'JOHNSON',
  'Ångström',
  'LEE',
];
const GIVEN = ['John', 'JANE', 'anna', 'Björn', 'Li', 'MARY ANN', 'Peter', 'José', ''];
const MODS = ['CT', 'MR', 'CR', 'SR'];
const CLASS: Record<string, string> = {
  CT: '1.2.840.10008.5.1.4.1.1.2',
  MR: '1.2.840.10008.5.1.4.1.1.4',
  CR: '1.2.840.10008.5.1.4.1.1.1',
  SR: '1.2.840.10008.5.1.4.1.1.88.22',
};

const rng = seededUniform;

const pad = (n: number, w: number) => String(n).padStart(w, '0');

const PROCEDURES = [
  { CodeValue: 'CTCHEST', CodingSchemeDesignator: '99LOCAL', CodeMeaning: 'CT Chest' },
  { CodeValue: '24627-2', CodingSchemeDesignator: 'LN', CodeMeaning: 'Chest CT' },
  { CodeValue: 'MRHEAD', CodingSchemeDesignator: '99LOCAL' },
  { CodeValue: 'ctchest', CodingSchemeDesignator: '99LOCAL', CodeMeaning: 'lower-case code' },
];

/**
 * Sequence items, derived from the study and series numbers rather than drawn from the random
 * stream, so adding them left every other generated value as it was. Most series have one
 * request; every fifth study's series have two (the second a different RP), every seventh none.
 */
function requestItems(i: number, j: number, accession: string): GenSeries['requestAttributes'] {
  if (i % 7 === 6) return [];
  const first = { RequestedProcedureID: `RP${pad(i % 40, 3)}`, ScheduledProcedureStepID: `SPS${i}.${j + 1}`, AccessionNumber: accession };
  if (i % 5 !== 0) return [first];
  return [first, { RequestedProcedureID: `RP${pad((i + 1) % 40, 3)}`, ScheduledProcedureStepID: `SPS${i}.${j + 1}B` }];
}

function procedureItems(i: number): GenStudy['procedureCodes'] {
  if (i % 6 === 5) return [];
  const items = [PROCEDURES[i % PROCEDURES.length]!];
  if (i % 11 === 0) items.push(PROCEDURES[(i + 1) % PROCEDURES.length]!);
  return items;
}

export function generateStudies(count: number, seed = 42): GenStudy[] {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const patients = Array.from({ length: Math.ceil(count / 3) }, (_, i) => {
    const given = pick(GIVEN);
    return {
      patientId: `PID${pad(i, 5)}`,
      patientName: given ? `${pick(FAMILY)}^${given}` : pick(FAMILY),
      patientBirthDate: `${1930 + Math.floor(r() * 80)}${pad(1 + Math.floor(r() * 12), 2)}${pad(1 + Math.floor(r() * 28), 2)}`,
      patientSex: pick(['M', 'F', 'O']),
    };
  });
  const out: GenStudy[] = [];
  for (let i = 0; i < count; i++) {
    const p = pick(patients);
    const studyUid = `1.2.826.0.1.3680043.10.999.${i + 1}`;
    const nSeries = 1 + Math.floor(r() * 3);
    const series: GenSeries[] = [];
    for (let j = 0; j < nSeries; j++) {
      const modality = pick(MODS);
      const nInst = 1 + Math.floor(r() * 2);
      const seriesUid = `${studyUid}.${j + 1}`;
      series.push({
        seriesInstanceUid: seriesUid,
        modality,
        seriesNumber: j + 1,
        seriesDescription: `${modality} series ${j + 1}`,
        instances: Array.from({ length: nInst }, (_, k) => ({
          sopInstanceUid: `${seriesUid}.${k + 1}`,
          sopClassUid: CLASS[modality]!,
          instanceNumber: k + 1,
          rows: modality === 'SR' ? 0 : 512,
          columns: modality === 'SR' ? 0 : 512,
        })),
        requestAttributes: requestItems(i, j, `ACC${pad(i, 6)}`),
      });
    }
    out.push({
      studyInstanceUid: studyUid,
      ...p,
      studyDate: `${2015 + Math.floor(r() * 10)}${pad(1 + Math.floor(r() * 12), 2)}${pad(1 + Math.floor(r() * 28), 2)}`,
      studyTime: `${pad(Math.floor(r() * 24), 2)}${pad(Math.floor(r() * 60), 2)}${pad(Math.floor(r() * 60), 2)}`,
      accessionNumber: `ACC${pad(i, 6)}`,
      studyDescription: pick(['CHEST', 'Head CT', 'ABDOMEN^PELVIS', 'Knee MR', 'chest']),
      referringPhysicianName: pick(['HOUSE^GREGORY', 'Wilson^James', 'CUDDY^LISA']),
      series,
      modalities: [...new Set(series.map((s) => s.modality))].sort(),
      procedureCodes: procedureItems(i),
    });
  }
  return out;
}

/** Generated items (keyword → value) as the header parser gives them (tag → value). */
function byTag(keyword: string, items: Array<Record<string, string | undefined>>): SequenceItems[string] {
  const seq = INDEXED_SEQUENCES.find((s) => s.keyword === keyword)!;
  return items.map((item) => {
    const out: Record<string, string> = {};
    for (const a of seq.items) {
      const v = item[a.keyword];
      if (v !== undefined) out[a.tag] = v;
    }
    return out;
  });
}

export function* instanceRecords(studies: GenStudy[]): Generator<InstanceRecord> {
  for (const st of studies) {
    for (const se of st.series) {
      for (const inst of se.instances) {
        yield {
          patient: {
            patientId: st.patientId,
            issuerOfPatientId: '',
            patientName: st.patientName,
            patientBirthDate: st.patientBirthDate,
            patientSex: st.patientSex,
          },
          study: {
            studyInstanceUid: st.studyInstanceUid,
            studyDate: st.studyDate,
            studyTime: st.studyTime,
            accessionNumber: st.accessionNumber,
            referringPhysicianName: st.referringPhysicianName,
            studyDescription: st.studyDescription,
            studyId: st.accessionNumber.slice(3),
          },
          series: {
            seriesInstanceUid: se.seriesInstanceUid,
            modality: se.modality,
            seriesNumber: se.seriesNumber,
            seriesDescription: se.seriesDescription,
          },
          sequences: {
            '00400275': byTag('RequestAttributesSequence', se.requestAttributes),
            '00081032': byTag('ProcedureCodeSequence', st.procedureCodes),
          },
          instance: {
            sopInstanceUid: inst.sopInstanceUid,
            sopClassUid: inst.sopClassUid,
            instanceNumber: inst.instanceNumber,
            rows: inst.rows || undefined,
            columns: inst.columns || undefined,
            transferSyntaxUid: '1.2.840.10008.1.2.1',
            sizeBytes: 1000,
            storageKey: `studies/${st.studyInstanceUid}/series/${se.seriesInstanceUid}/instances/${inst.sopInstanceUid}.dcm`,
            source: 'import',
          },
        };
      }
    }
  }
}

/** Index the generated studies (one transaction: a few seconds for 1 000 studies). */
export async function populateIndex(db: Db, studies: GenStudy[]): Promise<number> {
  let n = 0;
  await db.transaction(async (trx) => {
    for (const rec of instanceRecords(studies)) {
      await indexInstanceIn(trx, rec);
      n++;
    }
  });
  return n;
}
