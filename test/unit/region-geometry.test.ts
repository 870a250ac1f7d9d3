import { expect } from 'chai';
import { isImagePlane, pixelToPatient, type ImagePlane } from '../../src/dicom/image-plane.js';
import { placement, preparedToSource, sourceToPrepared, type PlacedImage } from '../../src/dicom/render/fit.js';
import { box2dToPixels } from '../../src/analysis/findings-schema.js';

const placed = (columns: number, rows: number, pixelAspect: number, size: number): PlacedImage => ({
  ...placement(columns, rows, pixelAspect, size),
  rows,
  columns,
});

const close = (a: readonly number[], b: readonly number[], eps: number): void => {
  expect(a).to.have.length(b.length);
  a.forEach((v, i) => expect(v, `[${a.join(', ')}] vs [${b.join(', ')}]`).to.be.closeTo(b[i]!, eps));
};

describe('unit: finding regions, prepared square → source pixels → patient coordinates', () => {
  it('300 × 420, square pixels, into 896²: letterboxed left and right; corners and points round-trip', () => {
    const p = placed(300, 420, 1, 896);
    // 420 rows fill the height; 300 columns become 640, centred with 128 px of padding each side.
    expect(p).to.include({ width: 640, height: 896, left: 128, top: 0 });
    close(preparedToSource(p, [128, 0]), [0, 0], 1e-9);
    close(preparedToSource(p, [768, 896]), [300, 420], 1e-9);
    for (const pt of [
      [0, 0],
      [150, 210],
      [299.5, 0.5],
      [17.3, 401.9],
    ] as Array<[number, number]>) {
      close(preparedToSource(p, sourceToPrepared(p, pt)), pt, 1e-9);
    }
    // In the padding: clamped onto the image's edge.
    close(preparedToSource(p, [10, 448]), [0, 210], 1e-9);
  });

  it('256 columns × 200 rows with pixels twice as wide as tall (spacing 0.5 × 1 mm), into 512²: round trip', () => {
    // PixelSpacing [row 0.5, column 1.0]: pixel aspect (width/height) 2, so 256 mm wide × 100 mm tall.
    const p = placed(256, 200, 2, 512);
    expect(p).to.include({ width: 512, height: 200, left: 0, top: 156 });
    for (const pt of [
      [0, 0],
      [128, 100],
      [255.25, 199.75],
      [3.5, 17],
    ] as Array<[number, number]>) {
      close(preparedToSource(p, sourceToPrepared(p, pt)), pt, 1e-9);
    }
    // One source column is 2 prepared pixels wide, one source row 1 prepared pixel tall.
    close(sourceToPrepared(p, [10, 10]), [20, 166], 1e-9);
  });

  it("the model's box_2d ([y0, x0, y1, x1] on 0–1000 of the square) lands on the source pixels it covers", () => {
    const p = placed(256, 200, 2, 512);
    // A box around source columns 64–192, rows 50–150: in the square, x 128–384, y 206–306.
    const box2d = [(206 / 512) * 1000, (128 / 512) * 1000, (306 / 512) * 1000, (384 / 512) * 1000];
    const px = box2dToPixels(box2d, 512)!;
    close(preparedToSource(p, [px[0], px[1]]), [64, 50], 0.3);
    close(preparedToSource(p, [px[2], px[3]]), [192, 150], 0.3);
  });

  it('pixel (corner-origin) → patient: Image Position is the centre of the first pixel, spacing per axis', () => {
    const plane: ImagePlane = {
      frameOfReferenceUid: '1.2.3',
      imagePositionPatient: [-100, -50, 20],
      imageOrientationPatient: [1, 0, 0, 0, 1, 0],
      pixelSpacing: [0.5, 1],
    };
    close(pixelToPatient(plane, [0.5, 0.5]), [-100, -50, 20], 1e-9);
    // Ten columns right (1 mm each), ten rows down (0.5 mm each).
    close(pixelToPatient(plane, [10.5, 10.5]), [-90, -45, 20], 1e-9);
    // A coronal plane: rows run along x, columns along -z.
    const coronal: ImagePlane = { ...plane, imageOrientationPatient: [1, 0, 0, 0, 0, -1], pixelSpacing: [2, 2] };
    close(pixelToPatient(coronal, [0.5, 3.5]), [-100, -50, 14], 1e-9);
  });

  it('a plane needs a frame of reference, finite values, positive spacing and unit direction cosines', () => {
    const ok = {
      frameOfReferenceUid: '1.2',
      imagePositionPatient: [0, 0, 0],
      imageOrientationPatient: [1, 0, 0, 0, 1, 0],
      pixelSpacing: [1, 1],
    };
    expect(isImagePlane(ok as ImagePlane)).to.equal(true);
    expect(isImagePlane({ ...ok, frameOfReferenceUid: undefined } as Partial<ImagePlane>)).to.equal(false);
    expect(isImagePlane({ ...ok, pixelSpacing: [0, 1] } as ImagePlane)).to.equal(false);
    expect(isImagePlane({ ...ok, imageOrientationPatient: [2, 0, 0, 0, 1, 0] } as ImagePlane)).to.equal(false);
    expect(isImagePlane({ ...ok, imagePositionPatient: [Number.NaN, 0, 0] } as ImagePlane)).to.equal(false);
  });
});
