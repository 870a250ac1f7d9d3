/**
 * Image pixel coordinates to patient coordinates (PS3.3 C.7.6.2.1.1, Image Plane): the geometry
 * an SR's SCOORD3D needs to place a region of one image in its Frame of Reference.
 */

export interface ImagePlane {
  frameOfReferenceUid: string;
  /** Centre of the first transmitted pixel (mm). */
  imagePositionPatient: [number, number, number];
  /** Direction cosines of a row (columns increasing), then of a column (rows increasing). */
  imageOrientationPatient: [number, number, number, number, number, number];
  /** Distance between rows (vertical), then between columns (horizontal), in mm. */
  pixelSpacing: [number, number];
}

/**
 * A point in the corner-origin pixel coordinates of an SR SCOORD (column, row; 0\0 is the
 * top-left corner of the top-left pixel, whose centre is 0.5\0.5) as patient coordinates in mm.
 * Image Position is the centre of the first pixel, hence the half-pixel shift.
 */
export function pixelToPatient(plane: ImagePlane, [column, row]: readonly [number, number]): [number, number, number] {
  const [px, py, pz] = plane.imagePositionPatient;
  const [rx, ry, rz, cx, cy, cz] = plane.imageOrientationPatient;
  const [rowSpacing, columnSpacing] = plane.pixelSpacing;
  const i = (column - 0.5) * columnSpacing;
  const j = (row - 0.5) * rowSpacing;
  return [px + rx * i + cx * j, py + ry * i + cy * j, pz + rz * i + cz * j];
}

/** Whether the values make a usable plane: finite, positive spacing, unit orientation vectors. */
export function isImagePlane(p: Partial<ImagePlane> | undefined): p is ImagePlane {
  if (!p?.frameOfReferenceUid || !p.imagePositionPatient || !p.imageOrientationPatient || !p.pixelSpacing) return false;
  const nums = [...p.imagePositionPatient, ...p.imageOrientationPatient, ...p.pixelSpacing];
  if (nums.length !== 11 || !nums.every(Number.isFinite)) return false;
  if (!(p.pixelSpacing[0] > 0 && p.pixelSpacing[1] > 0)) return false;
  const o = p.imageOrientationPatient;
  const norm = (a: number, b: number, c: number) => Math.hypot(a, b, c);
  return Math.abs(norm(o[0], o[1], o[2]) - 1) < 0.01 && Math.abs(norm(o[3], o[4], o[5]) - 1) < 0.01;
}
