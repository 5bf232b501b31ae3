// Rotation-invariant shape features of one frame's object, measured on the soft membership map
// so that blurred edges are located where they cross half-way between background and object.
//
// The outline is sampled as a radial profile r(θ) from the centroid, after whitening the region's
// second moments: an ellipse becomes a circle, any rectangle a square, any triangle an
// equilateral one, so motion smear (which stretches the object along its path) and the
// renderer's isosceles triangle both land on the ideal shapes. A circle's profile is then flat; a
// square's swings between its inradius and circumradius four times a turn (4th harmonic), a
// triangle's three times and much deeper (3rd harmonic). Blur rounds corners, which lowers those
// harmonics but does not move them to another order, so the classes stay apart.
import type { Choice } from "./nearest.ts";
import { type Shape, shapes } from "./vocabulary.ts";

export interface ObjectRegion {
  width: number;
  height: number;
  /** Per pixel of the frame, 0 = background colour, 1 = object colour (projection, clamped). */
  membership: Float32Array;
  /** Component labels of the frame; only pixels labelled `label` belong to the object. */
  labels: Int32Array;
  label: number;
  /** Centroid in pixel coordinates (pixel i spans [i, i + 1)). */
  cx: number;
  cy: number;
  /** Pixels in the component (membership above one half). */
  area: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface ShapeFeatures {
  /** Outline area over the area of the circle through its farthest point: circle 1, square 2/π, triangle ≈ 0.41. */
  radialFill: number;
  /** Component area over its axis-aligned bounding box. */
  boxFill: number;
  /** Square root of the ratio of the second moments' eigenvalues: 1 for the ideal shapes. */
  elongation: number;
  /** Magnitudes of the whitened radial profile's 3rd and 4th harmonics, relative to its mean. */
  harmonic3: number;
  harmonic4: number;
}

/** Maps whitened directions to image directions: the area-preserving square root of the covariance. */
interface Whitening {
  a: number;
  b: number;
  c: number;
  elongation: number;
}

function whitening(region: ObjectRegion): Whitening {
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  let n = 0;
  for (let y = region.y0; y <= region.y1; y++) {
    for (let x = region.x0; x <= region.x1; x++) {
      if (region.labels[y * region.width + x] !== region.label) continue;
      const dx = x + 0.5 - region.cx;
      const dy = y + 0.5 - region.cy;
      sxx += dx * dx;
      syy += dy * dy;
      sxy += dx * dy;
      n++;
    }
  }
  // A pixel is a unit square, not a point: its own variance keeps single rows or columns finite.
  sxx = sxx / n + 1 / 12;
  syy = syy / n + 1 / 12;
  sxy /= n;
  const mean = (sxx + syy) / 2;
  const spread = Math.hypot((sxx - syy) / 2, sxy);
  const l1 = mean + spread;
  const l2 = Math.max(mean - spread, 1e-9);
  const angle = 0.5 * Math.atan2(2 * sxy, sxx - syy);
  const [ex, ey] = [Math.cos(angle), Math.sin(angle)];
  const norm = Math.sqrt(Math.sqrt(l1 * l2));
  const s1 = Math.sqrt(l1) / norm;
  const s2 = Math.sqrt(l2) / norm;
  // s1·e1e1ᵀ + s2·e2e2ᵀ with e2 = (-ey, ex)
  return {
    a: s1 * ex * ex + s2 * ey * ey,
    b: (s1 - s2) * ex * ey,
    c: s1 * ey * ey + s2 * ex * ex,
    elongation: Math.sqrt(l1 / l2),
  };
}

const rayCount = 128;
const rayStep = 0.25;

function membershipAt(region: ObjectRegion, px: number, py: number): number {
  if (px < 0 || py < 0 || px >= region.width || py >= region.height) return 0;
  const i = py * region.width + px;
  return region.labels[i] === region.label ? (region.membership[i] ?? 0) : 0;
}

/** Bilinear interpolation between pixel centres, zero outside the object's component. */
function sample(region: ObjectRegion, x: number, y: number): number {
  const u = x - 0.5;
  const v = y - 0.5;
  const i = Math.floor(u);
  const j = Math.floor(v);
  const fx = u - i;
  const fy = v - j;
  return (
    (1 - fx) * (1 - fy) * membershipAt(region, i, j) +
    fx * (1 - fy) * membershipAt(region, i + 1, j) +
    (1 - fx) * fy * membershipAt(region, i, j + 1) +
    fx * fy * membershipAt(region, i + 1, j + 1)
  );
}

/**
 * Distance from the centroid to the outermost half-membership crossing along each ray, in
 * whitened units (rays are evenly spaced in whitened space).
 */
export function radialProfile(region: ObjectRegion, w: Whitening): Float64Array {
  const corners = [
    [region.x0, region.y0],
    [region.x1 + 1, region.y0],
    [region.x0, region.y1 + 1],
    [region.x1 + 1, region.y1 + 1],
  ] as const;
  // Whitening is area-preserving, so it stretches no direction by more than the elongation.
  const reach =
    (Math.max(...corners.map(([x, y]) => Math.hypot(x - region.cx, y - region.cy))) + 2) * w.elongation;
  const profile = new Float64Array(rayCount);
  for (let k = 0; k < rayCount; k++) {
    const angle = (2 * Math.PI * k) / rayCount;
    const ux = Math.cos(angle);
    const uy = Math.sin(angle);
    const dx = w.a * ux + w.b * uy;
    const dy = w.b * ux + w.c * uy;
    let previous = sample(region, region.cx, region.cy);
    let edge = 0;
    for (let s = rayStep; s <= reach; s += rayStep) {
      const current = sample(region, region.cx + dx * s, region.cy + dy * s);
      if (previous >= 0.5 && current < 0.5) {
        edge = s - rayStep + ((previous - 0.5) / (previous - current)) * rayStep;
      }
      previous = current;
    }
    profile[k] = edge;
  }
  return profile;
}

function harmonic(profile: Float64Array, order: number, mean: number): number {
  let re = 0;
  let im = 0;
  for (let k = 0; k < profile.length; k++) {
    const angle = (2 * Math.PI * order * k) / profile.length;
    const r = profile[k] ?? 0;
    re += r * Math.cos(angle);
    im -= r * Math.sin(angle);
  }
  return Math.hypot(re, im) / profile.length / mean;
}

export function shapeFeatures(region: ObjectRegion): ShapeFeatures {
  const w = whitening(region);
  const profile = radialProfile(region, w);
  let sum = 0;
  let sumSquares = 0;
  let max = 0;
  for (const r of profile) {
    sum += r;
    sumSquares += r * r;
    if (r > max) max = r;
  }
  const mean = sum / profile.length;
  const outlineArea = 0.5 * sumSquares * ((2 * Math.PI) / profile.length);
  const boxArea = (region.x1 - region.x0 + 1) * (region.y1 - region.y0 + 1);
  return {
    radialFill: max > 0 ? outlineArea / (Math.PI * max * max) : 0,
    boxFill: boxArea > 0 ? region.area / boxArea : 0,
    elongation: w.elongation,
    harmonic3: mean > 0 ? harmonic(profile, 3, mean) : 0,
    harmonic4: mean > 0 ? harmonic(profile, 4, mean) : 0,
  };
}

/**
 * Each shape's features as independent heavy-tailed distributions: centre and spread over rendered clips, sharp and
 * degraded (blur σ ≤ 2 px, noise, motion smear over 3 frames, objects down to 13 px). The spreads
 * differ by class on purpose: blur can halve a triangle's 3rd harmonic but never gives a circle
 * or a square one, so the triangle's spread is wide and the others' narrow.
 */
const classes: Readonly<Record<Shape, Record<"radialFill" | "harmonic3" | "harmonic4", [number, number]>>> = {
  circle: { radialFill: [0.9, 0.06], harmonic3: [0.003, 0.005], harmonic4: [0.004, 0.006] },
  square: { radialFill: [0.68, 0.04], harmonic3: [0.002, 0.004], harmonic4: [0.063, 0.01] },
  triangle: { radialFill: [0.48, 0.07], harmonic3: [0.12, 0.03], harmonic4: [0.005, 0.012] },
};

/** The most likely shape; confidence is its posterior probability under equal priors. */
export function classifyShape(f: ShapeFeatures): Choice<Shape> {
  const logLikelihood = shapes.map((s) => {
    let sum = 0;
    for (const key of ["radialFill", "harmonic3", "harmonic4"] as const) {
      const [mean, spread] = classes[s][key];
      const z = (f[key] - mean) / spread;
      // Student's t with 3 degrees of freedom: heavy tails keep one odd feature from making
      // a wrong call look certain.
      sum -= 2 * Math.log(1 + (z * z) / 3) + Math.log(spread);
    }
    return sum;
  });
  const best = Math.max(...logLikelihood);
  const weights = logLikelihood.map((l) => Math.exp(l - best));
  const total = weights.reduce((a, b) => a + b, 0);
  const index = logLikelihood.indexOf(best);
  return { value: shapes[index] as Shape, confidence: (weights[index] ?? 0) / total, distance: -best };
}
