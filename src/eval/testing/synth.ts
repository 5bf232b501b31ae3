// Anti-aliased clips drawn in TypeScript, for the analyzer's unit tests that must not depend on
// Python. The analyzer's acceptance is measured on train/render.py's clips (render.ts); these
// only pin behaviour (rotation, sizes, edge cases) cheaply.
import type { Clip } from "../analyzer.ts";
import { backgroundRgb, colourRgb, type Direction, type Scene, type Shape } from "../vocabulary.ts";

export interface SynthOptions {
  width?: number;
  height?: number;
  frames?: number;
  /** Diameter or side, in pixels. */
  size?: number;
  /** Distance travelled over the clip, in pixels. */
  travel?: number;
  /** Rotation of the shape, radians. */
  rotation?: number;
}

const step: Record<Direction, [number, number]> = { left: [-1, 0], right: [1, 0], up: [0, -1], down: [0, 1] };

/** Signed inside test for a shape of size s centred at the origin, rotated by `rotation`. */
function inside(shape: Shape, s: number, rotation: number, x: number, y: number): boolean {
  const c = Math.cos(rotation);
  const n = Math.sin(rotation);
  const u = c * x + n * y;
  const v = -n * x + c * y;
  if (shape === "circle") return u * u + v * v <= (s / 2) * (s / 2);
  if (shape === "square") return Math.abs(u) <= s / 2 && Math.abs(v) <= s / 2;
  // Apex up, base s wide, height s, centred on its bounding box.
  const depth = (v + s / 2) / s;
  return depth >= 0 && depth <= 1 && Math.abs(u) <= (depth * s) / 2;
}

export function synthClip(scene: Scene, options: SynthOptions = {}): Clip {
  const width = options.width ?? 64;
  const height = options.height ?? 64;
  const frameCount = options.frames ?? 9;
  const size = options.size ?? Math.round(0.3 * Math.min(width, height));
  const travel =
    options.travel ?? 0.5 * (scene.direction === "left" || scene.direction === "right" ? width : height);
  const rotation = options.rotation ?? 0;
  const [dx, dy] = step[scene.direction];
  const fg = colourRgb[scene.colour];
  const bg = backgroundRgb[scene.background];
  const data = new Uint8Array(width * height * frameCount * 3);
  const sub = 4;
  for (let t = 0; t < frameCount; t++) {
    const progress = frameCount > 1 ? t / (frameCount - 1) - 0.5 : 0;
    const cx = width / 2 + dx * travel * progress;
    const cy = height / 2 + dy * travel * progress;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let hits = 0;
        for (let j = 0; j < sub; j++) {
          for (let i = 0; i < sub; i++) {
            if (inside(scene.shape, size, rotation, x + (i + 0.5) / sub - cx, y + (j + 0.5) / sub - cy))
              hits++;
          }
        }
        const a = hits / (sub * sub);
        const o = ((t * height + y) * width + x) * 3;
        for (let ch = 0; ch < 3; ch++) data[o + ch] = Math.round((fg[ch] ?? 0) * a + (bg[ch] ?? 0) * (1 - a));
      }
    }
  }
  return { data, width, height, frameCount };
}
