import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRemoteNode } from '../src/catalog/remote-nodes.js';
import { createDb, migrateLatest } from '../src/db/connection.js';
import type { FlatElement } from '../src/dicom/flat-dataset.js';
import { STUDY_ROOT_FIND } from '../dimse/find.js';
import { runTool, startStorescp } from '../test/helpers/dcmtk.js';
import { startNodeProcess } from '../test/helpers/node-process.js';
import { freePort } from '../test/helpers/node.js';
import { ORTHANC_BIN, startOrthanc, type TestOrthanc } from '../test/helpers/orthanc.js';
import { rawFind } from '../test/helpers/raw-find.js';
import { buildSqliteIndex } from './qido-scale.js';
import { SERVE_NODE_FLAGS } from './node-flags.js';

/**
 * The DIMSE rows of issue 20, each against its peer measured in the same run (Orthanc 1.10, DCMTK
 * storescp), median of `rounds` rounds, printed as our time, the peer's and the ratio:
 * C-FIND STUDY with a wildcard over a generated index (BENCH_DIMSE_STUDIES studies, default 10 000:
 * 336 match SMI*; no peer holds that index, the goal is 30 ms), C-FIND IMAGE over the 99-slice CT,
 * C-MOVE of the CT to a DCMTK storescp, C-STORE over 4 and over 1 association. C-FINDs are timed
 * on the wire (test/helpers/raw-find.ts: C-FIND-RQ sent → final response), so neither findscu's
 * process start nor a client's decoding counts. `node dist/bench/bench.js dimse` runs it alone.
 *
 * Peers: every DCMTK process (storescu, movescu, storescp) and Orthanc (DCMTK inside) run with
 * TCP_NODELAY=1 (BENCH_DCMTK_NODELAY=0 leaves them as built). The Debian DCMTK 3.6.7 here keeps
 * Nagle's algorithm on unless that variable says otherwise, and a C-STORE then waits ~40 ms for a
 * delayed ACK (PS3.8 PDUs written in two parts): storescu → storescp took 4.7–5.3 s for the CT
 * with Nagle and 0.13–0.20 s without, so every row with a DCMTK peer measured that stall, not the
 * peers. The C-MOVE destination is one storescp with --max-pdu 131072 (DCMTK's largest) and --fork
 * (an association per process, so the node's DICOM_MOVE_ASSOCIATIONS associations run at once),
 * the same storescp for the node's and Orthanc's C-MOVE and for the storescu floor.
 */

const STUDIES = Number(process.env.BENCH_DIMSE_STUDIES ?? 10000);
/** DCMTK's switch for TCP_NODELAY (read by every DCMTK process, Orthanc's included). */
const DCMTK_NODELAY = process.env.BENCH_DCMTK_NODELAY ?? '1';
/** The C-MOVE destination (and storescp floor): DCMTK's largest receive PDU, one process per association. */
const DEST_ARGS = ['--max-pdu', '131072', '--fork'];
const FINDS = 20;

export interface DimseRow {
  label: string;
  ours: number;
  peer?: number;
  peerName: string;
  unit: 's' | 'ms';
  goal: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function seconds(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function storescu(port: number, aec: string, files: string[], aet = 'BENCHSCU'): Promise<void> {
  const r = await runTool('storescu', ['-aet', aet, '-aec', aec, '127.0.0.1', String(port), ...files], 600_000);
  if (r.code !== 0) throw new Error(`storescu to ${aec} failed: ${r.output.slice(-400)}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** A fresh node process on its own data directory; `prepare` writes into its index first. */
async function withNode<T>(prepare: (dataDir: string) => Promise<void>, fn: (port: number) => Promise<T>): Promise<T> {
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-dimse-'));
  try {
    await prepare(dataDir);
    const port = await freePort();
    const child = await startNodeProcess(dataDir, port, {
      NODE_OPTIONS: [process.env.NODE_OPTIONS ?? '', ...SERVE_NODE_FLAGS].join(' ').trim(),
    });
    try {
      return await fn(port);
    } finally {
      await stopChild(child);
    }
  } finally {
    await fsp.rm(dataDir, { recursive: true, force: true });
  }
}

async function withOrthanc<T>(peers: Record<string, { aeTitle: string; port: number }>, fn: (o: TestOrthanc) => Promise<T>): Promise<T> {
  const o = await startOrthanc(peers);
  try {
    return await fn(o);
  } finally {
    await o.stop();
  }
}

async function registerDestination(dataDir: string, aeTitle: string, port: number): Promise<void> {
  const db = createDb({ client: 'sqlite', filename: path.join(dataDir, 'radiant.sqlite') });
  try {
    await migrateLatest(db);
    await createRemoteNode(db, {
      aeTitle,
      host: '127.0.0.1',
      port,
      tls: false,
      description: null,
      allowQueryRetrieve: true,
      stowUrl: null,
    });
  } finally {
    await db.destroy();
  }
}

/** p50 of FINDS C-FINDs (one association each), after two warm-ups; throws unless `expected` answers came. */
async function findP50(port: number, calledAe: string, identifier: FlatElement[], expected: number): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < FINDS + 2; i++) {
    const r = await rawFind(port, STUDY_ROOT_FIND, identifier, { calledAe });
    if (r.statuses.at(-1) !== 0 || r.statuses.length - 1 !== expected) {
      throw new Error(
        `C-FIND at ${calledAe}: ${r.statuses.length - 1} answers (expected ${expected}), final 0x${r.statuses.at(-1)?.toString(16)}`,
      );
    }
    if (i >= 2) ms.push(r.totalMs);
  }
  return median(ms);
}

const text = (tag: number, vr: string, value: string): FlatElement => ({ tag, vr, value });

function imageFind(study: string, series: string): FlatElement[] {
  return [
    text(0x00080052, 'CS', 'IMAGE'),
    text(0x00080018, 'UI', ''),
    text(0x00080016, 'UI', ''),
    text(0x0020000d, 'UI', study),
    text(0x0020000e, 'UI', series),
    text(0x00200013, 'IS', ''),
  ];
}

/** Study and Series Instance UIDs of a Part 10 file, by DCMTK's dcmdump. */
async function uidsOf(file: string): Promise<{ study: string; series: string }> {
  const r = await runTool('dcmdump', ['+P', '0020,000d', '+P', '0020,000e', file]);
  const [study, series] = [...r.output.matchAll(/\[([0-9.]+)\]/g)].map((m) => m[1]!);
  if (!study || !series) throw new Error(`no UIDs in ${file}`);
  return { study, series };
}

async function moveTo(port: number, calledAe: string, study: string, destDir: string, expected: number): Promise<number> {
  const secs = await seconds(async () => {
    const r = await runTool(
      'movescu',
      [
        '-S',
        '-aet',
        'BENCHMOVE',
        '-aec',
        calledAe,
        '-aem',
        'BENCHDEST',
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${study}`,
      ].concat(['127.0.0.1', String(port)]),
      600_000,
    );
    if (r.code !== 0) throw new Error(`movescu from ${calledAe}: ${r.output.slice(-400)}`);
  });
  const got = (await fsp.readdir(destDir)).length;
  if (got !== expected) throw new Error(`C-MOVE from ${calledAe}: ${got} of ${expected} arrived`);
  return secs;
}

/** One round of every row: the node's figures and the peers' figures. */
async function round(files: string[], sets: string[][]): Promise<Record<string, { ours: number; peer?: number }>> {
  const out: Record<string, { ours: number; peer?: number }> = {};
  const orthanc = fs.existsSync(ORTHANC_BIN);
  const { study, series } = await uidsOf(files[0]!);

  // C-FIND STUDY, PatientName=SMI*, on the generated index.
  if (STUDIES > 0) {
    const identifier = [
      text(0x00080052, 'CS', 'STUDY'),
      text(0x00100010, 'PN', 'SMI*'),
      text(0x0020000d, 'UI', ''),
      text(0x00100020, 'LO', ''),
      text(0x00080020, 'DA', ''),
    ];
    let matches = 0;
    out.findStudy = {
      ours: await withNode(
        async (dir) => void (await buildSqliteIndex(dir, STUDIES)),
        async (port) => {
          const probe = await rawFind(port, STUDY_ROOT_FIND, identifier);
          matches = probe.statuses.length - 1;
          return findP50(port, 'RADIANT', identifier, matches);
        },
      ),
    };
  }

  // C-STORE, C-FIND IMAGE and C-MOVE on a node holding the CT; the same on Orthanc.
  const destDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'radiant-bench-dest-'));
  const destPort = await freePort();
  const dest = await startStorescp(destPort, destDir, { aeTitle: 'BENCHDEST', args: DEST_ARGS });
  try {
    const ours = await withNode(
      (dir) => registerDestination(dir, 'BENCHDEST', destPort),
      async (port) => {
        const storeOne = await seconds(() => storescu(port, 'RADIANT', files));
        const find = await findP50(port, 'RADIANT', imageFind(study, series), files.length);
        const move = await moveTo(port, 'RADIANT', study, destDir, files.length);
        return { storeOne, find, move };
      },
    );
    const storeFour = await withNode(
      async () => undefined,
      (port) => seconds(async () => void (await Promise.all(sets.map((s, i) => storescu(port, 'RADIANT', s, `BENCH${i}`))))),
    );
    await fsp.rm(destDir, { recursive: true, force: true });
    await fsp.mkdir(destDir);
    // storescp alone: what the peer takes to receive the CT from storescu (C-STORE's and C-MOVE's floor).
    const storescp = await seconds(() => storescu(destPort, 'BENCHDEST', files));
    await fsp.rm(destDir, { recursive: true, force: true });
    await fsp.mkdir(destDir);
    out.storeOne = { ours: ours.storeOne, peer: storescp };
    out.findImage = { ours: ours.find };
    out.move = { ours: ours.move };
    out.storeFour = { ours: storeFour };
    out.storescpMove = { ours: storescp };
    if (orthanc) {
      const o = await withOrthanc({ benchdest: { aeTitle: 'BENCHDEST', port: destPort } }, async (o) => {
        await storescu(o.dicomPort, o.aeTitle, files);
        const find = await findP50(o.dicomPort, o.aeTitle, imageFind(study, series), files.length);
        const move = await moveTo(o.dicomPort, o.aeTitle, study, destDir, files.length);
        return { find, move };
      });
      const four = await orthancStoreSeconds(sets);
      out.findImage.peer = o.find;
      out.move.peer = o.move;
      out.storeFour.peer = four;
    }
  } finally {
    await dest.stop();
    await fsp.rm(destDir, { recursive: true, force: true });
  }
  return out;
}

/** Seconds a fresh Orthanc takes to receive `sets` over one storescu association each, all at once; undefined without Orthanc. */
export async function orthancStoreSeconds(sets: string[][]): Promise<number | undefined> {
  if (!fs.existsSync(ORTHANC_BIN)) return undefined;
  return withOrthanc({}, (o) =>
    seconds(async () => void (await Promise.all(sets.map((s, i) => storescu(o.dicomPort, o.aeTitle, s, `BENCH${i}`))))),
  );
}

function print(rows: DimseRow[]): void {
  console.log(`DIMSE paths (medians; ratio = ours / peer, same run; DCMTK and Orthanc with TCP_NODELAY=${DCMTK_NODELAY}):`);
  console.log(`  ${'path'.padEnd(46)} ${'RadiantAI'.padStart(10)} ${'peer'.padStart(10)}  ${'ratio'.padStart(6)}  goal`);
  for (const r of rows) {
    const fmt = (x: number) => (r.unit === 'ms' ? `${x.toFixed(1)} ms` : `${x.toFixed(2)} s`);
    const peer = r.peer === undefined ? '—' : `${fmt(r.peer)} ${r.peerName}`;
    const ratio = r.peer === undefined ? '' : `${(r.ours / r.peer).toFixed(2)}×`;
    console.log(`  ${r.label.padEnd(46)} ${fmt(r.ours).padStart(10)} ${peer.padStart(10)}  ${ratio.padStart(6)}  ${r.goal}`);
  }
}

/**
 * The DIMSE section of `npm run bench`: `rounds` rounds (BENCH_RUNS), then one table. `sets` are
 * four copies of the CT with distinct UIDs (the 4-association rows); returns the rows printed.
 */
export async function dimsePathsBench(files: string[], sets: string[][], rounds: number): Promise<DimseRow[]> {
  const results: Array<Awaited<ReturnType<typeof round>>> = [];
  // Children (DCMTK tools, storescp, Orthanc) inherit it; restored for the rest of `npm run bench`.
  const before = process.env.TCP_NODELAY;
  process.env.TCP_NODELAY = DCMTK_NODELAY;
  try {
    for (let i = 0; i < rounds; i++) results.push(await round(files, sets));
  } finally {
    if (before === undefined) delete process.env.TCP_NODELAY;
    else process.env.TCP_NODELAY = before;
  }
  const m = (key: string, side: 'ours' | 'peer') => {
    const xs = results.map((r) => r[key]?.[side]).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  const rows: DimseRow[] = [];
  const add = (key: string, label: string, peerName: string, unit: 's' | 'ms', goal: string) => {
    const ours = m(key, 'ours');
    if (ours !== undefined) rows.push({ label, ours, peer: m(key, 'peer'), peerName, unit, goal });
  };
  add('findStudy', `C-FIND STUDY PatientName=SMI* (${STUDIES} studies)`, '', 'ms', '≤ 30 ms');
  add('findImage', `C-FIND IMAGE, ${files.length} results`, 'Orthanc', 'ms', '≤ 0.5× Orthanc');
  add('move', 'C-MOVE of the CT to DCMTK storescp', 'Orthanc', 's', '≤ 0.5× Orthanc');
  add('storescpMove', 'storescu → storescp (the peer alone)', '', 's', 'C-MOVE floor');
  add('storeFour', 'C-STORE, 4 associations', 'Orthanc', 's', '≤ 0.5× Orthanc');
  add('storeOne', 'C-STORE, 1 association', 'storescp', 's', '≤ 0.25× storescp');
  print(rows);
  return rows;
}
