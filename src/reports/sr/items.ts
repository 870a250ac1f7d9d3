/**
 * SR content items (PS3.3 C.17.3) as naturalized dcmjs datasets. One builder per value type,
 * each taking the relationship to its parent, so a tree reads like the template tables.
 */
import type { NaturalizedDataset } from 'dcmjs';
import type { Code } from './codes.js';
import type { ImageRef } from '../content.js';
import { ds, lo, sh, pn, ut } from '../../dicom/vr-values.js';

export type Relationship =
  | 'CONTAINS'
  | 'HAS OBS CONTEXT'
  | 'HAS CONCEPT MOD'
  | 'HAS PROPERTIES'
  | 'HAS ACQ CONTEXT'
  | 'INFERRED FROM'
  | 'SELECTED FROM';

/** A content item: a dataset with RelationshipType, ValueType and value attributes. */
export type ContentItem = NaturalizedDataset;

/** Code Sequence Macro item (PS3.3 Table 8.8-1). */
export function codeItem(c: Code): NaturalizedDataset {
  return { CodeValue: sh(c.value), CodingSchemeDesignator: sh(c.scheme), CodeMeaning: lo(c.meaning) };
}

function base(rel: Relationship, valueType: string, name: Code | null, children: ContentItem[]): ContentItem {
  const item: ContentItem = { RelationshipType: rel, ValueType: valueType };
  if (name) item.ConceptNameCodeSequence = [codeItem(name)];
  if (children.length > 0) item.ContentSequence = children;
  return item;
}

export function container(rel: Relationship, name: Code, children: ContentItem[]): ContentItem {
  return { ...base(rel, 'CONTAINER', name, children), ContinuityOfContent: 'SEPARATE' };
}

/** TEXT: the value is UT, so any text (markup, non-ASCII, very long) is kept whole as data. */
export function text(rel: Relationship, name: Code, value: string, children: ContentItem[] = []): ContentItem {
  return { ...base(rel, 'TEXT', name, children), TextValue: ut(value) };
}

export function code(rel: Relationship, name: Code, value: Code, children: ContentItem[] = []): ContentItem {
  return { ...base(rel, 'CODE', name, children), ConceptCodeSequence: [codeItem(value)] };
}

export function uidref(rel: Relationship, name: Code, uid: string): ContentItem {
  return { ...base(rel, 'UIDREF', name, []), UID: uid };
}

export function pname(rel: Relationship, name: Code, value: string): ContentItem {
  return { ...base(rel, 'PNAME', name, []), PersonName: pn(value) };
}

export function num(rel: Relationship, name: Code, value: number, unit: Code, children: ContentItem[] = []): ContentItem {
  return {
    ...base(rel, 'NUM', name, children),
    MeasuredValueSequence: [{ MeasurementUnitsCodeSequence: [codeItem(unit)], NumericValue: ds(value) }],
  };
}

/** IMAGE: Referenced SOP Sequence with the frame when the image is multi-frame. */
export function image(rel: Relationship, name: Code | null, ref: ImageRef): ContentItem {
  const sop: NaturalizedDataset = {
    ReferencedSOPClassUID: ref.sopClassUid,
    ReferencedSOPInstanceUID: ref.sopInstanceUid,
  };
  if (ref.frameNumber !== undefined) sop.ReferencedFrameNumber = [ref.frameNumber];
  return { ...base(rel, 'IMAGE', name, []), ReferencedSOPSequence: [sop] };
}

export type GraphicType = 'POINT' | 'POLYLINE';

/** SCOORD in image pixel coordinates (column, row pairs), with its SELECTED FROM image. */
export function scoord(
  rel: Relationship,
  name: Code,
  graphicType: GraphicType,
  points: Array<[number, number]>,
  selectedFrom: ContentItem,
): ContentItem {
  return {
    ...base(rel, 'SCOORD', name, [selectedFrom]),
    GraphicType: graphicType,
    GraphicData: points.flat(),
  };
}

export type GraphicType3D = 'POINT' | 'POLYGON';

/**
 * SCOORD3D (PS3.3 C.18.9) in patient coordinates (mm) of a Frame of Reference: (x, y, z)
 * triplets; a POLYGON's first and last points are the same.
 */
export function scoord3d(
  rel: Relationship,
  name: Code,
  graphicType: GraphicType3D,
  points: Array<[number, number, number]>,
  frameOfReferenceUid: string,
): ContentItem {
  return {
    ...base(rel, 'SCOORD3D', name, []),
    GraphicType: graphicType,
    GraphicData: points.flat(),
    ReferencedFrameOfReferenceUID: frameOfReferenceUid,
  };
}
