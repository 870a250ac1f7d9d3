import { expect } from 'chai';
import { nativePixelBytes, pixelGeometryProblem } from '../../src/dicom/pixel-geometry.js';

const MAX = 2 ** 28;
const ct = { rows: 512, columns: 512, samplesPerPixel: 1, bitsAllocated: 16 };

describe('unit: pixel geometry', () => {
  it('native bytes: rows x columns x samples x frames x bits', () => {
    expect(nativePixelBytes(ct, 'PixelData', 16)).to.equal(512 * 512 * 2);
    expect(nativePixelBytes({ ...ct, numberOfFrames: 3 }, 'PixelData', 16)).to.equal(3 * 512 * 512 * 2);
    expect(nativePixelBytes({ rows: 3, columns: 3 }, 'PixelData', 1)).to.equal(2);
    expect(nativePixelBytes({ rows: 2, columns: 2 }, 'FloatPixelData', 16)).to.equal(16);
    expect(
      nativePixelBytes({ rows: 2, columns: 2, samplesPerPixel: 3, photometricInterpretation: 'YBR_FULL_422' }, 'PixelData', 8),
    ).to.equal(8);
  });
  it('accepts a geometry that fits, and no pixel data at all', () => {
    expect(pixelGeometryProblem(ct, { element: 'PixelData', length: 512 * 512 * 2 }, true, MAX)).to.equal(undefined);
    expect(pixelGeometryProblem({}, undefined, false, MAX)).to.equal(undefined);
  });
  it('names missing or zero Rows/Columns, oversize frames and short pixel data', () => {
    expect(pixelGeometryProblem({}, undefined, true, MAX)).to.match(/without Rows/);
    expect(pixelGeometryProblem({ ...ct, rows: 0 }, undefined, true, MAX)).to.match(/must be above 0/);
    expect(pixelGeometryProblem(ct, undefined, true, 1000)).to.match(/MAX_FRAME_PIXELS/);
    expect(pixelGeometryProblem(ct, { element: 'PixelData', length: 100 }, true, MAX)).to.match(/too short/);
    expect(pixelGeometryProblem({ ...ct, bitsAllocated: undefined }, { element: 'PixelData', length: 1 << 20 }, true, MAX)).to.match(
      /Bits Allocated/,
    );
  });
  it('encapsulated: at least one fragment per frame', () => {
    expect(pixelGeometryProblem({ ...ct, numberOfFrames: 2 }, { element: 'PixelData', fragments: 1 }, true, MAX)).to.match(/fragment/);
    expect(pixelGeometryProblem({ ...ct, numberOfFrames: 2 }, { element: 'PixelData', fragments: 2 }, true, MAX)).to.equal(undefined);
  });
});
