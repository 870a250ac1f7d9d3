import { expect } from 'chai';
import { viewerSliceNumbering } from '../../src/analysis/slice-order.js';

type Iop = [number, number, number, number, number, number];
const AXIAL: Iop = [1, 0, 0, 0, 1, 0];
const SAGITTAL: Iop = [0, 1, 0, 0, 0, -1];

/** A single-frame image at `z` along the normal of `iop` (axial: z; sagittal: the normal is -x). */
const slice = (uid: string, instanceNumber: number | undefined, z: number | undefined, iop: Iop | undefined = AXIAL) => ({
  sopInstanceUid: uid,
  frameNumber: 1,
  instanceNumber,
  imagePositionPatient: z === undefined ? undefined : ((iop === SAGITTAL ? [-z, 10, 20] : [-100, -100, z]) as [number, number, number]),
  imageOrientationPatient: iop,
  rows: 64,
  columns: 64,
  modality: 'CT',
});

const numbers = (slices: Array<ReturnType<typeof slice>>) => {
  const of = viewerSliceNumbering(slices);
  return Object.fromEntries(slices.map((s) => [s.sopInstanceUid, of(s)?.number]));
};

describe('unit: the viewer slice numbers (src/analysis/slice-order.ts viewerSliceNumbering, as OHIF 3.13 orders a stack)', () => {
  it('orders by position along the slice normal, highest first, whatever the InstanceNumbers say', () => {
    // Numbered from the feet (instance 1 lowest): the viewer shows the head first, so "I: 3" is (6/8).
    const feetFirst = Array.from({ length: 8 }, (_, i) => slice(`s${i}`, i + 1, -17.5 + 5 * i));
    const of = viewerSliceNumbering(feetFirst);
    expect(of({ sopInstanceUid: 's2' })).to.deep.equal({ number: 6, of: 8, unit: 'slice' });
    expect(feetFirst.map((s) => of(s)!.number)).to.deep.equal([8, 7, 6, 5, 4, 3, 2, 1]);
    // Shuffled numbers, listed in any order: the number is the position's.
    const shuffled = [slice('c', 1, 10), slice('a', 7, 30), slice('d', 2, 0), slice('b', 4, 20)];
    expect(numbers(shuffled)).to.deep.equal({ a: 1, b: 2, c: 3, d: 4 });
    // Numbered from the head: both orders agree.
    expect(numbers([slice('h', 1, 50), slice('m', 2, 45), slice('f', 3, 40)])).to.deep.equal({ h: 1, m: 2, f: 3 });
    // A sagittal stack: the normal is row × column cosines = -x, so the largest -x (the patient's right) comes first.
    expect(numbers([slice('l', 1, -5, SAGITTAL), slice('r', 2, 5, SAGITTAL), slice('c', 3, 0, SAGITTAL)])).to.deep.equal({
      r: 1,
      c: 2,
      l: 3,
    });
    // A missing slice (a gap of two spacings) still sorts by position.
    const gap = [0, 5, 10, 15, 20, 30, 35, 40, 45, 50].map((z, i) => slice(`g${i}`, i + 1, z));
    expect(gap.map((s) => viewerSliceNumbering(gap)(s)!.number)).to.deep.equal([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
  });

  it('falls back to InstanceNumber order (then SOP Instance UID) when the geometry is missing, mixed or irregular', () => {
    // One image without a position.
    expect(numbers([slice('a', 2, 0), slice('b', 1, undefined), slice('c', 3, 10)])).to.deep.equal({ b: 1, a: 2, c: 3 });
    // No orientation at all.
    expect(numbers([slice('a', 2, 0, undefined), slice('b', 1, 10, undefined)])).to.deep.equal({ b: 1, a: 2 });
    // Two planes in one series (a scout in the stack).
    expect(numbers([slice('a', 2, 0), slice('b', 1, 10), slice('x', 3, 5, SAGITTAL)])).to.deep.equal({ b: 1, a: 2, x: 3 });
    // Irregular spacing (2 mm, then 7 mm): OHIF does not reconstruct it, and keeps the numbers.
    expect(numbers([slice('a', 3, 0), slice('b', 1, 2), slice('c', 2, 9)])).to.deep.equal({ b: 1, c: 2, a: 3 });
    // Two images at one place.
    expect(numbers([slice('a', 3, 0), slice('b', 1, 0), slice('c', 2, 5)])).to.deep.equal({ b: 1, c: 2, a: 3 });
    // No InstanceNumber counts as 0; ties go by SOP Instance UID.
    expect(numbers([slice('z', 1, undefined), slice('y', undefined, 3), slice('x', 1, 4)])).to.deep.equal({ y: 1, x: 2, z: 3 });
  });

  it('a multi-frame object is a stack of its own frames; CR/DX/MG images one each; an unknown image is null', () => {
    const frames = [3, 1, 2].map((f) => ({ ...slice('mf', 5, 10 * f), frameNumber: f }));
    const cr = { ...slice('cr', 2, undefined, undefined), modality: 'CR' };
    const of = viewerSliceNumbering([slice('a', 1, 0), ...frames, cr, slice('b', 2, 5)]);
    expect(of({ sopInstanceUid: 'mf', frameNumber: 2 })).to.deep.equal({ number: 2, of: 3, unit: 'frame' });
    expect(of({ sopInstanceUid: 'mf', frameNumber: 4 })).to.equal(null);
    expect(of({ sopInstanceUid: 'cr' })).to.deep.equal({ number: 1, of: 1, unit: 'slice' });
    // The stack is the rest of the series: two slices, by position.
    expect(of({ sopInstanceUid: 'b' })).to.deep.equal({ number: 1, of: 2, unit: 'slice' });
    expect(of({ sopInstanceUid: 'a' })).to.deep.equal({ number: 2, of: 2, unit: 'slice' });
    expect(of({ sopInstanceUid: 'nope' })).to.equal(null);
    expect(viewerSliceNumbering([])({ sopInstanceUid: 'a' })).to.equal(null);
  });
});
