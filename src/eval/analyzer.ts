// The prompt-adherence analyzer: reads a clip's RGB frames, finds the one moving object against
// the uniform background, and names its colour, shape and direction of motion (and the
// background's name) with a confidence for each. Built to survive what a generator produces:
// soft edges, noise, colour drift and smeared motion, not only the renderer's crisp frames.
import { type Choice, nearest, rgbDistance } from "./nearest.ts";
import { classifyShape, type ObjectRegion, type ShapeFeatures, shapeFeatures } from "./shape-features.ts";
import {
  type Background,
  backgroundRgb,
  backgrounds,
  type Colour,
  colourRgb,
  colours,
  type Direction,
  type Rgb,
  type Shape,
} from "./vocabulary.ts";

/** Frames as the engine returns them: `data` is T×H×W×3 bytes, row-major, RGB. */
export interface Clip {
  data: Uint8Array;
  width: number;
  height: number;
  frameCount: number;
}

export interface Reading<T> {
  /** null when the clip gives no evidence for any value. */
  value: T | null;
  /**
   * 0..1. Colour and background: the margin between the nearest and second-nearest named value
   * (nearest()); shape: the class's posterior probability (classifyShape()); direction:
   * (|major| - |minor|) / (|major| + |minor|) of the velocity's components.
   */
  confidence: number;
}

export interface ClipAnalysis {
  /** The object was found in at least half of the frames. */
  found: boolean;
  framesWithObject: number;
  background: Reading<Background> & { rgb: Rgb };
  colour: Reading<Colour> & { rgb: Rgb | null };
  shape: Reading<Shape> & { features: ShapeFeatures | null };
  /** velocity in pixels per frame, image axes (y grows downwards). */
  direction: Reading<Direction> & { velocity: { x: number; y: number } | null };
}

interface FrameObject {
  region: ObjectRegion;
  touchesBorder: boolean;
}

/** What the analyzer keeps of one frame's object once its maps are reused for the next frame. */
interface FrameReading {
  frame: number;
  cx: number;
  cy: number;
  touchesBorder: boolean;
  features: ShapeFeatures;
}

/** A named colour this close to the background could not be told from it, so it is no candidate. */
const indistinguishableFromBackground = 60;
/** Components smaller than this fraction of the frame are noise, not the object. */
const minimumAreaFraction = 0.001;
/** Motion shorter than this fraction of the frame over the whole clip has no direction. */
const minimumTravelFraction = 0.05;
/**
 * A generated object's colour often comes out mixed with the background (blur, smear, a faded
 * sample): a named colour matches anything on its segment towards the background down to this
 * fraction of itself.
 */
const weakestMixture = 0.6;
/** Membership at or above this counts as the object's interior when reading its colour. */
const interiorMembership = 0.75;

function median(histogram: Uint32Array, count: number): number {
  let seen = 0;
  for (let v = 0; v < histogram.length; v++) {
    seen += histogram[v] ?? 0;
    if (seen * 2 >= count) return v;
  }
  return histogram.length - 1;
}

class ColourMedian {
  private readonly histograms = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)] as const;
  count = 0;
  add(data: Uint8Array, offset: number): void {
    for (let ch = 0; ch < 3; ch++) {
      const v = data[offset + ch] ?? 0;
      const histogram = this.histograms[ch as 0 | 1 | 2];
      histogram[v] = (histogram[v] ?? 0) + 1;
    }
    this.count++;
  }
  value(): Rgb {
    return [
      median(this.histograms[0], this.count),
      median(this.histograms[1], this.count),
      median(this.histograms[2], this.count),
    ];
  }
}

function validate(clip: Clip): void {
  const { width, height, frameCount, data } = clip;
  for (const [name, v] of [
    ["width", width],
    ["height", height],
    ["frameCount", frameCount],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`clip ${name} must be a positive integer, got ${v}`);
  }
  const expected = width * height * frameCount * 3;
  if (data.length !== expected) {
    throw new Error(
      `clip data has ${data.length} bytes but ${frameCount} frames of ${width}x${height} RGB need ${expected}`,
    );
  }
}

/** The background's colour and how far its pixels stray from it (noise, drift). */
interface BackgroundEstimate {
  rgb: Rgb;
  /** Pixels farther than this from `rgb` are off the background. */
  noiseFloor: number;
}

function distanceTo(data: Uint8Array, offset: number, rgb: Rgb): number {
  return Math.hypot(
    (data[offset] ?? 0) - rgb[0],
    (data[offset + 1] ?? 0) - rgb[1],
    (data[offset + 2] ?? 0) - rgb[2],
  );
}

/**
 * Read from a ring along the frame's edges over all frames, which the object seldom covers:
 * the colour is the ring's per-channel median, the noise floor twice the distance three quarters
 * of the ring stay within, and never below a margin that drift of a uniform background does not
 * reach. The object's own size plays no part, so a generator's oversized object is still found.
 */
function estimateBackground(clip: Clip): BackgroundEstimate {
  const { width, height, frameCount, data } = clip;
  const ring = Math.max(1, Math.floor(Math.min(width, height) / 32));
  const offsets: number[] = [];
  for (let t = 0; t < frameCount; t++) {
    const base = t * width * height;
    for (let y = 0; y < height; y++) {
      const edgeRow = y < ring || y >= height - ring;
      for (let x = 0; x < width; x++) {
        if (edgeRow || x < ring || x >= width - ring) offsets.push((base + y * width + x) * 3);
      }
    }
  }
  const acc = new ColourMedian();
  for (const o of offsets) acc.add(data, o);
  const rgb = acc.value();
  const distances = offsets.map((o) => distanceTo(data, o, rgb)).sort((a, b) => a - b);
  const quartile = distances[Math.floor(0.75 * (distances.length - 1))] ?? 0;
  return { rgb, noiseFloor: Math.max(40, 2 * quartile) };
}

/**
 * A first estimate of the object's colour: the median of the pixels off the background, keeping
 * the farther half of them so that blurred edges (mixtures) do not drag it towards the background.
 */
function offBackgroundColour(clip: Clip, background: BackgroundEstimate): Rgb | null {
  const { data } = clip;
  const pixels = data.length / 3;
  const distances = new Uint16Array(pixels);
  const candidates = new Uint32Array(443);
  let offBackground = 0;
  for (let p = 0; p < pixels; p++) {
    const d = Math.round(distanceTo(data, 3 * p, background.rgb));
    distances[p] = d;
    if (d >= background.noiseFloor) {
      candidates[d] = (candidates[d] ?? 0) + 1;
      offBackground++;
    }
  }
  if (offBackground === 0) return null;
  const farHalf = median(candidates, offBackground);
  const acc = new ColourMedian();
  for (let p = 0; p < pixels; p++) if ((distances[p] ?? 0) >= farHalf) acc.add(data, 3 * p);
  return acc.value();
}

/** Projection of each pixel onto the segment background → object, clamped to 0..1. */
function membershipMap(clip: Clip, frame: number, background: Rgb, object: Rgb, out: Float32Array): void {
  const { data, width, height } = clip;
  const ax = object[0] - background[0];
  const ay = object[1] - background[1];
  const az = object[2] - background[2];
  const norm = ax * ax + ay * ay + az * az;
  const base = frame * width * height;
  for (let p = 0; p < width * height; p++) {
    const o = (base + p) * 3;
    const t =
      (((data[o] ?? 0) - background[0]) * ax +
        ((data[o + 1] ?? 0) - background[1]) * ay +
        ((data[o + 2] ?? 0) - background[2]) * az) /
      norm;
    out[p] = Math.min(1, Math.max(0, t));
  }
}

/** Largest 4-connected component of membership ≥ ½, or null when none is big enough. */
function largestComponent(
  membership: Float32Array,
  width: number,
  height: number,
  labels: Int32Array,
  stack: Int32Array,
): FrameObject | null {
  labels.fill(0);
  let best: FrameObject | null = null;
  let next = 1;
  for (let start = 0; start < width * height; start++) {
    if (labels[start] !== 0 || (membership[start] ?? 0) < 0.5) continue;
    const label = next++;
    labels[start] = label;
    let top = 0;
    stack[top++] = start;
    let area = 0;
    let sx = 0;
    let sy = 0;
    let x0 = width;
    let y0 = height;
    let x1 = -1;
    let y1 = -1;
    while (top > 0) {
      const p = stack[--top] ?? 0;
      const x = p % width;
      const y = (p - x) / width;
      area++;
      sx += x + 0.5;
      sy += y + 0.5;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      const neighbours = [
        x > 0 ? p - 1 : -1,
        x < width - 1 ? p + 1 : -1,
        y > 0 ? p - width : -1,
        y < height - 1 ? p + width : -1,
      ];
      for (const q of neighbours) {
        if (q >= 0 && labels[q] === 0 && (membership[q] ?? 0) >= 0.5) {
          labels[q] = label;
          stack[top++] = q;
        }
      }
    }
    if (area >= Math.max(4, minimumAreaFraction * width * height) && (!best || area > best.region.area)) {
      best = {
        region: {
          width,
          height,
          membership,
          labels,
          label,
          cx: sx / area,
          cy: sy / area,
          area,
          x0,
          y0,
          x1,
          y1,
        },
        touchesBorder: x0 === 0 || y0 === 0 || x1 === width - 1 || y1 === height - 1,
      };
    }
  }
  return best;
}

/** Distance from `measured` to the nearest mix of `named` with the background of at least weakestMixture. */
function mixtureDistance(measured: Rgb, named: Rgb, background: Rgb): number {
  const d = [named[0] - background[0], named[1] - background[1], named[2] - background[2]] as const;
  const m = [measured[0] - background[0], measured[1] - background[1], measured[2] - background[2]] as const;
  const along = (m[0] * d[0] + m[1] * d[1] + m[2] * d[2]) / (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
  const alpha = Math.min(1, Math.max(weakestMixture, along));
  return rgbDistance(m, [alpha * d[0], alpha * d[1], alpha * d[2]]);
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Least-squares slope of values over their frame indices. */
function slope(frames: number[], values: number[]): number {
  const n = frames.length;
  const mt = frames.reduce((a, b) => a + b, 0) / n;
  const mv = values.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const dt = (frames[i] ?? 0) - mt;
    num += dt * ((values[i] ?? 0) - mv);
    den += dt * dt;
  }
  return den > 0 ? num / den : 0;
}

function readDirection(clip: Clip, frames: number[], xs: number[], ys: number[]): ClipAnalysis["direction"] {
  if (frames.length < 2) return { value: null, confidence: 0, velocity: null };
  const vx = slope(frames, xs);
  const vy = slope(frames, ys);
  const span = clip.frameCount - 1;
  const horizontal = Math.abs(vx) >= Math.abs(vy);
  const travel = Math.abs(horizontal ? vx : vy) * span;
  const extent = horizontal ? clip.width : clip.height;
  const velocity = { x: vx, y: vy };
  if (travel < minimumTravelFraction * extent) return { value: null, confidence: 0, velocity };
  const major = Math.abs(horizontal ? vx : vy);
  const minor = Math.abs(horizontal ? vy : vx);
  const value: Direction = horizontal ? (vx > 0 ? "right" : "left") : vy > 0 ? "down" : "up";
  return { value, confidence: (major - minor) / (major + minor), velocity };
}

function readShape(readings: FrameReading[]): ClipAnalysis["shape"] {
  const whole = readings.filter((r) => !r.touchesBorder);
  const used = whole.length > 0 ? whole : readings;
  if (used.length === 0) return { value: null, confidence: 0, features: null };
  const perFrame = used.map((r) => r.features);
  const features: ShapeFeatures = {
    radialFill: medianOf(perFrame.map((f) => f.radialFill)),
    boxFill: medianOf(perFrame.map((f) => f.boxFill)),
    elongation: medianOf(perFrame.map((f) => f.elongation)),
    harmonic3: medianOf(perFrame.map((f) => f.harmonic3)),
    harmonic4: medianOf(perFrame.map((f) => f.harmonic4)),
  };
  const choice = classifyShape(features);
  return { value: choice.value, confidence: choice.confidence, features };
}

function named<T extends string>(choice: Choice<T> | null): Reading<T> {
  return choice ? { value: choice.value, confidence: choice.confidence } : { value: null, confidence: 0 };
}

export function analyzeClip(clip: Clip): ClipAnalysis {
  validate(clip);
  const { width, height, frameCount, data } = clip;
  const backgroundEstimate = estimateBackground(clip);
  const background = backgroundEstimate.rgb;
  const backgroundReading = {
    ...named(nearest(backgrounds, (b) => rgbDistance(background, backgroundRgb[b]))),
    rgb: background,
  };
  const nothing: ClipAnalysis = {
    found: false,
    framesWithObject: 0,
    background: backgroundReading,
    colour: { value: null, confidence: 0, rgb: null },
    shape: { value: null, confidence: 0, features: null },
    direction: { value: null, confidence: 0, velocity: null },
  };
  const estimate = offBackgroundColour(clip, backgroundEstimate);
  if (!estimate || rgbDistance(estimate, background) < 1) return nothing;

  const readings: FrameReading[] = [];
  const interior = new ColourMedian();
  const membership = new Float32Array(width * height);
  const labels = new Int32Array(width * height);
  const stack = new Int32Array(width * height);
  for (let t = 0; t < frameCount; t++) {
    membershipMap(clip, t, background, estimate, membership);
    const object = largestComponent(membership, width, height, labels, stack);
    if (!object) continue;
    const { cx, cy } = object.region;
    readings.push({
      frame: t,
      cx,
      cy,
      touchesBorder: object.touchesBorder,
      features: shapeFeatures(object.region),
    });
    const base = t * width * height;
    for (let p = 0; p < width * height; p++) {
      if (labels[p] === object.region.label && (membership[p] ?? 0) >= interiorMembership) {
        interior.add(data, (base + p) * 3);
      }
    }
  }
  if (readings.length * 2 < frameCount) return { ...nothing, framesWithObject: readings.length };

  const rgb = interior.count > 0 ? interior.value() : estimate;
  const candidates = colours.filter(
    (c) => rgbDistance(colourRgb[c], background) >= indistinguishableFromBackground,
  );
  const colour = {
    ...named(nearest(candidates, (c) => mixtureDistance(rgb, colourRgb[c], background))),
    rgb,
  };
  const direction = readDirection(
    clip,
    readings.map((r) => r.frame),
    readings.map((r) => r.cx),
    readings.map((r) => r.cy),
  );
  return {
    found: true,
    framesWithObject: readings.length,
    background: backgroundReading,
    colour,
    shape: readShape(readings),
    direction,
  };
}
