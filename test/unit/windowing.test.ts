import { expect } from 'chai';
import { CT_WINDOWS } from '../../src/analysis/ct-windows.js';
import { greyLinear, invert, linear8, minMax, robustBounds, threeWindows } from '../../src/dicom/render/value-mapping.js';

const ctThreeWindow = (values: Float32Array): Uint8Array => threeWindows(values, CT_WINDOWS);

describe('unit: windowing', () => {
  it('linear8 maps a window onto 0..255, clipped, rounded', () => {
    const b = { low: 0, high: 255 };
    expect(linear8(-10, b)).to.equal(0);
    expect(linear8(300, b)).to.equal(255);
    expect(linear8(127.6, b)).to.equal(128);
  });
  it('CT three windows: wide, soft tissue, brain, one per channel', () => {
    const out = ctThreeWindow(Float32Array.of(-2000, 0, 40, 3000));
    expect([...out.subarray(0, 3)]).to.deep.equal([0, 0, 0]);
    expect([...out.subarray(9, 12)]).to.deep.equal([255, 255, 255]);
    // 40 HU: the centre of the brain window, the middle of the wide one.
    expect(out[6 + 2]).to.equal(linear8(40, CT_WINDOWS[2]));
    expect(out[3]).to.equal(linear8(0, CT_WINDOWS[0]));
  });
  it('the hand-inlined CT loop agrees with linear8 on every channel', () => {
    const values = Float32Array.from({ length: 200 }, (_, i) => -1100 + i * 11.3);
    const out = ctThreeWindow(values);
    for (let i = 0; i < values.length; i++) {
      for (let c = 0; c < 3; c++) expect(out[i * 3 + c], `value ${values[i]} channel ${c}`).to.equal(linear8(values[i]!, CT_WINDOWS[c]!));
    }
  });
  it('grey linear window, inversion, min-max', () => {
    expect([...greyLinear(Float32Array.of(0, 40, 100), { low: 0, high: 100 })]).to.deep.equal([0, 102, 255]);
    expect([...invert(Uint8Array.of(0, 255, 10))]).to.deep.equal([255, 0, 245]);
    expect(minMax(Float32Array.of(3, -1, 7))).to.deep.equal({ low: -1, high: 7 });
    expect(minMax(new Float32Array(0))).to.deep.equal({ low: 0, high: 0 });
  });
  it('robust bounds ignore a few outliers', () => {
    const slice = Float32Array.from({ length: 10_000 }, (_, i) => i % 100);
    slice[0] = -1e6;
    slice[1] = 1e6;
    const b = robustBounds([slice]);
    expect(b.low).to.be.within(0, 1);
    expect(b.high).to.be.within(98, 99);
  });
});
