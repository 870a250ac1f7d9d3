import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { ParsePool } from '../src/dicom/parse-pool.js';
import { makeCtSeries } from '../fixtures/generate.js';
import { tempDir } from './helpers/node.js';
import { fileMetaPrefix } from '../src/dicom/part10.js';

/** Hostile files cannot crash or hang the node: parsing runs in workers with limits. */

function element(group: number, elem: number, vr: string, length: number, value = Buffer.alloc(0)): Buffer {
  const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(elem, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(length, 8);
  else head.writeUInt16LE(length, 6);
  return Buffer.concat([head, value]);
}

const meta = fileMetaPrefix({
  sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
  sopInstanceUid: '1.2.3.4.5',
  transferSyntaxUid: '1.2.840.10008.1.2.1',
});

/** 200 000 nested sequences of undefined length: a stack-overflow bomb for recursive parsers. */
function nestedSequences(depth: number): Buffer {
  const open = Buffer.concat([element(0x0008, 0x1115, 'SQ', 0xffffffff), Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff])]);
  return Buffer.concat([meta, Buffer.concat(Array.from({ length: depth }, () => open))]);
}

/** A value length of nearly 4 GiB in a 1 KB file. */
function hugeLength(): Buffer {
  return Buffer.concat([meta, element(0x0009, 0x1010, 'OB', 0xfffffff0), Buffer.alloc(1000)]);
}

describe('parser containment', function () {
  this.timeout(60_000);
  let dir: string;
  let pool: ParsePool;

  before(async () => {
    dir = await tempDir('parser');
    pool = new ParsePool({ workers: 1, timeoutMs: 1500, maxOldGenerationSizeMb: 128 });
  });
  after(async () => {
    await pool.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  async function parse(name: string, bytes: Buffer) {
    const p = path.join(dir, name);
    await fsp.writeFile(p, bytes);
    return pool.parse(p);
  }

  it('parses a valid file', async () => {
    const [f] = makeCtSeries({ slices: 1 });
    const r = await parse('ok.dcm', f!.bytes);
    expect(r.ok).to.equal(true);
    if (r.ok) expect(r.header.sopInstanceUid).to.equal(f!.sopInstanceUid);
  });

  it('refuses deeply nested sequences without crashing', async () => {
    const r = await parse('nested.dcm', nestedSequences(200_000));
    expect(r.ok).to.equal(false);
    if (!r.ok) expect(r.kind).to.equal('unparseable');
  });

  it('refuses absurd value lengths without crashing', async () => {
    const r = await parse('huge.dcm', hugeLength());
    expect(r.ok).to.equal(false);
  });

  it('gives up on a file that never finishes reading, and the pool keeps working', async () => {
    const fifo = path.join(dir, 'never.dcm');
    execFileSync('mkfifo', [fifo]);
    const r = await pool.parse(fifo);
    expect(r.ok).to.equal(false);
    if (!r.ok) expect(r.error).to.match(/longer than 1500 ms/);
    // Release the thread still blocked opening the FIFO.
    fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    const [f] = makeCtSeries({ slices: 1 });
    const again = await parse('after.dcm', f!.bytes);
    expect(again.ok).to.equal(true);
  });
});
