import type { DicomJsonDataset as JsonDataset } from '../dicom/dicom-json.js';
import { tags } from '../dicom/dictionary.js';
import { items, num, nums, str, strs } from './json-values.js';

/** One 2-D image of a series: a single-frame instance, or one frame of a multi-frame one. */
export interface SliceHeader {
  sopInstanceUid: string;
  sopClassUid: string;
  seriesInstanceUid: string;
  /** 1-based; 1 for a single-frame instance. */
  frameNumber: number;
  instanceNumber?: number;
  rows: number;
  columns: number;
  /** Centre of the first transmitted pixel, patient coordinates in mm. */
  imagePositionPatient?: [number, number, number];
  /** Row direction cosines, then column direction cosines. */
  imageOrientationPatient?: [number, number, number, number, number, number];
  /** Distance between rows, then between columns (mm). */
  pixelSpacing?: [number, number];
  /** Imager Pixel Spacing (0018,1164): the detector pitch of projection images, which often lack Pixel Spacing. */
  imagerPixelSpacing?: [number, number];
  sliceThickness?: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  /** Image Type (0008,0008), or Frame Type (0008,9007) of the frame when the object has one. */
  imageType: string[];
  photometricInterpretation?: string;
  windowCenter?: number;
  windowWidth?: number;
  modality?: string;
  bitsStored?: number;
  pixelRepresentation?: number;
  /** Convolution Kernel (0018,1210), top level or in the CT Reconstruction functional group. */
  convolutionKernel?: string;
  frameOfReferenceUid?: string;
}

/** Tags (PS3.6), named as in PS3.3. */
const T = tags(
  'ImageType',
  'SOPClassUID',
  'SOPInstanceUID',
  'Modality',
  'FrameType',
  'SliceThickness',
  'ImagerPixelSpacing',
  'ConvolutionKernel',
  'CTReconstructionSequence',
  'SeriesInstanceUID',
  'InstanceNumber',
  'ImagePositionPatient',
  'ImageOrientationPatient',
  'FrameOfReferenceUID',
  'PlanePositionSequence',
  'PlaneOrientationSequence',
  'PhotometricInterpretation',
  'NumberOfFrames',
  'Rows',
  'Columns',
  'PixelSpacing',
  'BitsStored',
  'PixelRepresentation',
  'WindowCenter',
  'WindowWidth',
  'RescaleIntercept',
  'RescaleSlope',
  'PixelMeasuresSequence',
  'FrameVOILUTSequence',
  'PixelValueTransformationSequence',
  'SharedFunctionalGroupsSequence',
  'PerFrameFunctionalGroupsSequence',
);

/**
 * The functional group macros of one frame (PS3.3 C.7.6.16): each macro sits either in the
 * Shared or in the Per-Frame Functional Groups Sequence, so the frame's own item wins and the
 * shared item is the fallback.
 */
class FrameGroups {
  constructor(
    private readonly perFrame: JsonDataset | undefined,
    private readonly shared: JsonDataset | undefined,
  ) {}

  macro(sequenceTag: string): JsonDataset | undefined {
    return (this.perFrame && items(this.perFrame, sequenceTag)[0]) ?? (this.shared && items(this.shared, sequenceTag)[0]);
  }

  /**
   * An attribute inside whichever frame-type macro the IOD uses (CT Image Frame Type, MR Image
   * Frame Type, …): they differ by sequence tag, all hold Frame Type / the same attributes.
   */
  nested(tag: string): JsonDataset | undefined {
    for (const group of [this.perFrame, this.shared]) {
      if (!group) continue;
      for (const key of Object.keys(group)) {
        const item = items(group, key)[0];
        if (item && tag in item) return item;
      }
    }
    return undefined;
  }
}

const triple = (v: number[] | undefined): [number, number, number] | undefined => (v ? [v[0]!, v[1]!, v[2]!] : undefined);
const pair = (v: number[] | undefined): [number, number] | undefined => (v ? [v[0]!, v[1]!] : undefined);
const six = (v: number[] | undefined): SliceHeader['imageOrientationPatient'] =>
  v ? [v[0]!, v[1]!, v[2]!, v[3]!, v[4]!, v[5]!] : undefined;

/**
 * The slices of one instance's DICOM JSON data set: one per frame. An object without Rows and
 * Columns (SR, PDF, RT Plan…) has no image and yields none.
 *
 * A multi-frame object without per-frame positions (US cine, legacy multi-frame MR) gets no
 * Image Position on its frames: a top-level position would give every frame the same place and
 * make them look like duplicates, when they are really frames in time.
 */
export function sliceHeadersFromJson(ds: JsonDataset): SliceHeader[] {
  const rows = num(ds, T.Rows);
  const columns = num(ds, T.Columns);
  const sopInstanceUid = str(ds, T.SOPInstanceUID);
  if (rows === undefined || columns === undefined || rows <= 0 || columns <= 0 || !sopInstanceUid) return [];

  const perFrame = items(ds, T.PerFrameFunctionalGroupsSequence);
  const shared = items(ds, T.SharedFunctionalGroupsSequence)[0];
  const frames = Math.max(1, Math.trunc(num(ds, T.NumberOfFrames) ?? 1), perFrame.length);
  const enhanced = perFrame.length > 0 || shared !== undefined;

  const base = {
    sopInstanceUid,
    sopClassUid: str(ds, T.SOPClassUID) ?? '',
    seriesInstanceUid: str(ds, T.SeriesInstanceUID) ?? '',
    instanceNumber: num(ds, T.InstanceNumber),
    rows,
    columns,
    photometricInterpretation: str(ds, T.PhotometricInterpretation),
    modality: str(ds, T.Modality),
    bitsStored: num(ds, T.BitsStored),
    pixelRepresentation: num(ds, T.PixelRepresentation),
    frameOfReferenceUid: str(ds, T.FrameOfReferenceUID),
    imagerPixelSpacing: pair(nums(ds, T.ImagerPixelSpacing, 2)),
  };

  const out: SliceHeader[] = [];
  for (let f = 0; f < frames; f++) {
    const g = new FrameGroups(perFrame[f], shared);
    const position = enhanced ? g.macro(T.PlanePositionSequence) : undefined;
    const orientation = enhanced ? g.macro(T.PlaneOrientationSequence) : undefined;
    const measures = enhanced ? g.macro(T.PixelMeasuresSequence) : undefined;
    const transform = enhanced ? g.macro(T.PixelValueTransformationSequence) : undefined;
    const voi = enhanced ? g.macro(T.FrameVOILUTSequence) : undefined;
    const frameType = enhanced ? g.nested(T.FrameType) : undefined;
    const recon = enhanced ? g.macro(T.CTReconstructionSequence) : undefined;

    const ipp = position
      ? triple(nums(position, T.ImagePositionPatient, 3))
      : frames === 1
        ? triple(nums(ds, T.ImagePositionPatient, 3))
        : undefined;
    const iop = six((orientation && nums(orientation, T.ImageOrientationPatient, 6)) ?? nums(ds, T.ImageOrientationPatient, 6));
    const spacing = pair((measures && nums(measures, T.PixelSpacing, 2)) ?? nums(ds, T.PixelSpacing, 2));
    const thickness = (measures && num(measures, T.SliceThickness)) ?? num(ds, T.SliceThickness);
    const slope = (transform && num(transform, T.RescaleSlope)) ?? num(ds, T.RescaleSlope) ?? 1;
    const intercept = (transform && num(transform, T.RescaleIntercept)) ?? num(ds, T.RescaleIntercept) ?? 0;
    const center = (voi && num(voi, T.WindowCenter)) ?? num(ds, T.WindowCenter);
    const width = (voi && num(voi, T.WindowWidth)) ?? num(ds, T.WindowWidth);
    const frameTypeValues = frameType ? strs(frameType, T.FrameType) : [];
    const kernel = (recon && str(recon, T.ConvolutionKernel)) ?? strs(ds, T.ConvolutionKernel).join('\\');

    out.push({
      ...base,
      frameNumber: f + 1,
      imagePositionPatient: ipp,
      imageOrientationPatient: iop,
      pixelSpacing: spacing,
      sliceThickness: thickness,
      rescaleSlope: slope,
      rescaleIntercept: intercept,
      imageType: frameTypeValues.length ? frameTypeValues : strs(ds, T.ImageType),
      windowCenter: center,
      windowWidth: width,
      convolutionKernel: kernel || undefined,
    });
  }
  return out;
}
