/** Small vector helpers for slice geometry (patient coordinates, mm). */

export type Vec3 = [number, number, number];

export const dot = (a: readonly number[], b: readonly number[]): number => a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!;

export function cross(a: readonly number[], b: readonly number[]): Vec3 {
  return [a[1]! * b[2]! - a[2]! * b[1]!, a[2]! * b[0]! - a[0]! * b[2]!, a[0]! * b[1]! - a[1]! * b[0]!];
}

export function normalize(v: Vec3): Vec3 | undefined {
  const n = Math.hypot(v[0], v[1], v[2]);
  return n > 1e-9 ? [v[0] / n, v[1] / n, v[2] / n] : undefined;
}

/** The slice normal: row cosines × column cosines (PS3.3 C.7.6.2.1.1). */
export function sliceNormal(iop: readonly number[]): Vec3 | undefined {
  return normalize(cross(iop.slice(0, 3), iop.slice(3, 6)));
}

/**
 * Two orientations are the same plane when both direction cosines agree to about half a degree;
 * scanners write cosines with rounding well below that, while a real change of plane (a scout, a
 * tilted block) is degrees.
 */
export function sameOrientation(a: readonly number[], b: readonly number[]): boolean {
  const cos = Math.cos((0.5 * Math.PI) / 180);
  const ra = normalize([a[0]!, a[1]!, a[2]!]);
  const ca = normalize([a[3]!, a[4]!, a[5]!]);
  const rb = normalize([b[0]!, b[1]!, b[2]!]);
  const cb = normalize([b[3]!, b[4]!, b[5]!]);
  if (!ra || !ca || !rb || !cb) return false;
  return dot(ra, rb) >= cos && dot(ca, cb) >= cos;
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Groups orientations into planes and returns the one most slices share, with the indexes of the
 * slices in it. Ties go to the plane seen first.
 */
export function dominantOrientation(iops: ReadonlyArray<readonly number[] | undefined>): { iop: number[]; members: number[] } | undefined {
  const groups: Array<{ iop: number[]; members: number[] }> = [];
  iops.forEach((iop, i) => {
    if (!iop) return;
    const g = groups.find((x) => sameOrientation(x.iop, iop));
    if (g) g.members.push(i);
    else groups.push({ iop: [...iop], members: [i] });
  });
  let best: (typeof groups)[number] | undefined;
  for (const g of groups) if (!best || g.members.length > best.members.length) best = g;
  return best;
}
