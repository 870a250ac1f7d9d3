import { expect } from 'chai';
import { decodeFrame } from '../../src/dicom/render/decode-frame.js';
import { placement, squarePixels } from '../../src/dicom/render/fit.js';
import { mapFrame } from '../../src/dicom/render/map-frame.js';
import {
  channelWindowsLut,
  greyVoiLut,
  greyWindow,
  linear8,
  pixelRangeWindow,
  threeWindows,
} from '../../src/dicom/render/value-mapping.js';

/** A 2 × 2 uncompressed 16-bit data set, in the shape decodeFrame reads (dcmjs naturalized). */
function elements(stored: number[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Rows: 2,
    Columns: 2,
    SamplesPerPixel: 1,
    BitsAllocated: 16,
    BitsStored: 16,
    PixelRepresentation: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    PixelData: [Int16Array.from(stored).buffer],
    ...extra,
  };
}

describe('unit: render pipeline value mappings', () => {
  it('greyWindow: LINEAR (PS3.3 half-pixel offsets), LINEAR_EXACT, SIGMOID', () => {
    const v = Float32Array.of(-1000, -160, 39.5, 239, 3000);
    expect([...greyWindow(v, 40, 400, 'LINEAR')]).to.deep.equal([0, 0, 128, 255, 255]);
    expect([...greyWindow(Float32Array.of(-160, 140, 240), 40, 400, 'LINEAR_EXACT')]).to.deep.equal([0, 191, 255]);
    const s = greyWindow(Float32Array.of(-1e4, 40, 1e4), 40, 400, 'SIGMOID');
    expect([s[0], s[1], s[2]]).to.deep.equal([0, 128, 255]);
  });

  it('greyVoiLut: clipped to the table, scaled by the entries actually used', () => {
    const lut = { firstMapped: 10, bits: 16, data: Uint16Array.of(0, 2048, 4095) };
    expect([...greyVoiLut(Float32Array.of(0, 10, 11, 12, 99), lut)]).to.deep.equal([0, 0, 128, 255, 255]);
  });

  it('threeWindows and its packed lookup agree with linear8 for any windows', () => {
    const windows = [
      { low: 0, high: 100 },
      { low: -50, high: 50 },
      { low: 20, high: 30 },
    ] as const;
    const values = Float32Array.of(-10, 3, 26, 47, 200);
    const rgb = threeWindows(values, windows);
    const lut = channelWindowsLut(windows);
    values.forEach((v, i) => {
      for (let c = 0; c < 3; c++) expect(rgb[i * 3 + c], `${v}/${c}`).to.equal(linear8(v, windows[c]));
      const packed = lut.table[Math.round(v * lut.scale + lut.offset - 0.5)]!;
      expect([packed & 0xff, (packed >>> 8) & 0xff, packed >>> 16], `lut ${v}`).to.deep.equal(
        [0, 1, 2].map((c) => linear8(v, windows[c]!)),
      );
    });
    expect(channelWindowsLut(windows)).to.equal(lut);
  });

  it('decodeFrame: sign extension, rescale per frame from the functional groups', () => {
    const el = elements([-2, 0, 5, 100], {
      NumberOfFrames: 1,
      SharedFunctionalGroupsSequence: [{ PixelValueTransformationSequence: [{ RescaleSlope: 2, RescaleIntercept: -10 }] }],
      RescaleSlope: 1,
      RescaleIntercept: 0,
    });
    const f = decodeFrame(el, 0);
    expect([...f.values!]).to.deep.equal([-14, -10, 0, 190]);
    const perFrame = {
      PerFrameFunctionalGroupsSequence: [{ PixelValueTransformationSequence: [{ RescaleSlope: 1, RescaleIntercept: 5 }] }],
    };
    expect([...decodeFrame({ ...el, ...perFrame }, 0).values!]).to.deep.equal([3, 5, 10, 105]);
  });

  it('mapFrame voi: the instance window, else min–max; MONOCHROME1 inverted', () => {
    const windowed = mapFrame(decodeFrame(elements([0, 100, 200, 300], { WindowCenter: 150, WindowWidth: 101 }), 0), { kind: 'voi' });
    expect(windowed.mapping).to.equal('voi-window');
    // c − 0.5 ± (w − 1)/2 = 99.5 … 199.5: 100 is just above the bottom.
    expect([...windowed.data]).to.deep.equal([0, 1, 255, 255]);
    const plain = mapFrame(decodeFrame(elements([0, 100, 300, 400]), 0), { kind: 'voi' });
    expect([plain.mapping, ...plain.data]).to.deep.equal(['minmax', 0, 64, 191, 255]);
    const inverted = mapFrame(decodeFrame(elements([0, 100, 300, 400], { PhotometricInterpretation: 'MONOCHROME1' }), 0), { kind: 'voi' });
    expect([inverted.mapping, ...inverted.data]).to.deep.equal(['minmax-inverted', 255, 191, 64, 0]);
  });

  it('mapFrame: values pass untouched; channel windows carry their name; enlarging fits into the square', () => {
    const f = decodeFrame(elements([0, 10, 20, 30]), 0);
    const values = mapFrame(f, { kind: 'values' });
    expect([values.format, ...values.data]).to.deep.equal(['f32', 0, 10, 20, 30]);
    const windows = [
      { low: 0, high: 30 },
      { low: 0, high: 30 },
      { low: 0, high: 30 },
    ] as const;
    const named = mapFrame(f, { kind: 'channel-windows', windows, name: 'three' });
    expect([named.mapping, named.format, named.width, named.fitted]).to.deep.equal(['three', 'rgb8', 2, false]);
    const fitted = mapFrame(f, { kind: 'channel-windows', windows, name: 'three' }, 8);
    expect([fitted.width, fitted.height, fitted.fitted, fitted.data.length]).to.deep.equal([8, 8, true, 8 * 8 * 3]);
    expect(placement(4, 2, 1, 8)).to.deep.equal({ width: 8, height: 4, left: 0, top: 2 });
  });
  it('pixelRangeWindow: declared Smallest/Largest first, else the range without the padding value', () => {
    const v = Float32Array.from([-3024, -1000, 0, 1000]);
    expect(pixelRangeWindow(v)).to.deep.equal({ center: -1012, width: 4024 });
    expect(pixelRangeWindow(v, undefined, -3024)).to.deep.equal({ center: 0, width: 2000 });
    expect(pixelRangeWindow(v, { low: -100, high: 100 }, -3024)).to.deep.equal({ center: 0, width: 200 });
    expect(pixelRangeWindow(Float32Array.from([5, 5]))).to.deep.equal({ center: 5, width: 1 });
  });

  it('mapFrame display: the requested window, else the frame window, else the pixel range; padding and 1-bit', () => {
    const f = decodeFrame(elements([-2000, 0, 100, 200], { PixelPaddingValue: 63536 }), 0);
    expect(f.padding).to.equal(-2000);
    const range = mapFrame(f, { kind: 'display' });
    expect(range.mapping).to.equal('pixel-range');
    expect([...range.data]).to.deep.equal([0, 0, 128, 255]);
    const asked = mapFrame(f, { kind: 'display', window: { center: 100, width: 2, fn: 'LINEAR' } });
    expect(asked.mapping).to.equal('window');
    expect([...asked.data]).to.deep.equal([0, 0, 255, 255]);
    const bits = decodeFrame(
      {
        Rows: 1,
        Columns: 8,
        SamplesPerPixel: 1,
        BitsAllocated: 1,
        BitsStored: 1,
        PhotometricInterpretation: 'MONOCHROME2',
        PixelData: [Uint8Array.of(0).buffer],
      },
      0,
    );
    // An empty 1-bit frame is black, not the threshold of a flat range.
    expect([...mapFrame(bits, { kind: 'display' }).data]).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('squarePixels: stretches along the larger spacing, as dcmjs-imaging did (480 wide at 1.25 → 600)', () => {
    expect(squarePixels(new Uint8Array(480 * 2), 480, 2, 1, 1.25)).to.include({ width: 600, height: 2 });
    expect(squarePixels(new Uint8Array(4 * 4), 4, 4, 1, 0.8)).to.include({ width: 4, height: 5 });
    const same = new Uint8Array(4);
    expect(squarePixels(same, 2, 2, 1, 1).data).to.equal(same);
    const wide = squarePixels(Uint8Array.of(0, 100), 2, 1, 1, 2);
    expect([...wide.data]).to.deep.equal([0, 50, 100, 100]);
  });
});
