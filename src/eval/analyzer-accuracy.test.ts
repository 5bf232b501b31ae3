// The analyzer's own correctness, measured on clips from train/render.py (the renderer of the
// training data): every combination of colour, shape, direction and background at random sizes,
// speeds, positions and frame sizes, sharp and then degraded the way a generator degrades video.
// The numbers this prints are the ones docs/EVAL.md reports.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { analyzeClip } from "./analyzer.ts";
import { seededRandom } from "./random.ts";
import { type RenderedClip, type RenderSpec, renderClips } from "./render.ts";
import { backgrounds, colours, directions, shapes } from "./vocabulary.ts";

const attributes = ["colour", "shape", "direction", "background"] as const;
type Attribute = (typeof attributes)[number];

function everyScene(): Pick<RenderSpec, "colour" | "shape" | "direction" | "background">[] {
  return colours.flatMap((colour) =>
    shapes.flatMap((shape) =>
      directions.flatMap((direction) =>
        backgrounds.map((background) => ({ colour, shape, direction, background })),
      ),
    ),
  );
}

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)] as T;
}

/** Clips rendered per Python run: bounds memory (a batch is held whole) at little start-up cost. */
const batchSize = 64;

function* rendered(specs: RenderSpec[]): Generator<RenderedClip> {
  for (let i = 0; i < specs.length; i += batchSize) yield* renderClips(specs.slice(i, i + batchSize));
}

/** Renders the specs in batches and scores the analyzer's reading of each clip against its metadata. */
function measure(specs: RenderSpec[]): { accuracy: Record<Attribute, number>; misses: string[] } {
  const correct: Record<Attribute, number> = { colour: 0, shape: 0, direction: 0, background: 0 };
  const misses: string[] = [];
  for (const { clip, meta } of rendered(specs)) {
    const a = analyzeClip(clip);
    for (const key of attributes) {
      if (a[key].value === meta[key]) correct[key]++;
      else {
        misses.push(
          `${key}: "${meta.caption}" seed ${meta.seed} ${meta.width}x${meta.height}x${meta.frames} ` +
            `size ${meta.size.toFixed(1)} read ${a[key].value} (confidence ${a[key].confidence.toFixed(2)})`,
        );
      }
    }
  }
  const accuracy = Object.fromEntries(attributes.map((k) => [k, correct[k] / specs.length])) as Record<
    Attribute,
    number
  >;
  return { accuracy, misses };
}

function report(
  t: { diagnostic(message: string): void },
  n: number,
  accuracy: Record<Attribute, number>,
  misses: string[],
) {
  t.diagnostic(`${n} clips: ${attributes.map((k) => `${k} ${(100 * accuracy[k]).toFixed(1)}%`).join(", ")}`);
  for (const miss of misses) t.diagnostic(miss);
}

interface DamageRanges {
  blur: [number, number];
  noise: [number, number];
  /** Largest offset of any channel, either sign. */
  shift: number;
}

/** Random scenes at 64-128 px, each degraded by draws from the ranges and a 1-3 frame smear. */
function degradedSpecs(
  count: number,
  seed: number,
  firstClipSeed: number,
  frameCounts: number[],
  ranges: DamageRanges,
): RenderSpec[] {
  const random = seededRandom(seed);
  const scenes = everyScene();
  const sizes = [64, 96, 128];
  const between = ([lo, hi]: [number, number]) => lo + (hi - lo) * random();
  const shift = () => ranges.shift * (2 * random() - 1);
  return Array.from({ length: count }, (_, i) => ({
    ...pick(scenes, random),
    seed: firstClipSeed + i,
    width: pick(sizes, random),
    height: pick(sizes, random),
    frames: pick(frameCounts, random),
    degrade: {
      blurSigma: between(ranges.blur),
      noiseSigma: between(ranges.noise),
      colourShift: [shift(), shift(), shift()],
      smearFrames: 1 + Math.floor(3 * random()),
      seed: i,
    },
  }));
}

describe("analyzer accuracy on train/render.py clips", () => {
  it("reads every attribute of sharp rendered clips at least 99% right", (t) => {
    const random = seededRandom(20261128);
    const sizes = [64, 80, 96, 128, 160, 192];
    const frameCounts = [5, 9, 17, 33];
    // Every scene twice: 576 clips, sizes, speeds and start positions drawn by the renderer's seed.
    const specs: RenderSpec[] = [...everyScene(), ...everyScene()].map((scene, i) => ({
      ...scene,
      seed: 100_000 + i,
      width: pick(sizes, random),
      height: pick(sizes, random),
      frames: pick(frameCounts, random),
    }));
    const { accuracy, misses } = measure(specs);
    report(t, specs.length, accuracy, misses);
    for (const key of attributes)
      assert.ok(accuracy[key] >= 0.99, `${key} ${accuracy[key]}\n${misses.join("\n")}`);
  });

  it("stays at least 99% right under blur, noise, colour shift and motion smear", (t) => {
    // Blur σ 1-2 px, noise σ 8-16, each channel shifted by up to ±20, smear over 1-3 frames, at
    // the generator's lengths (17 and 33 frames).
    const specs = degradedSpecs(216, 7, 200_000, [17, 33], { blur: [1, 2], noise: [8, 16], shift: 20 });
    const { accuracy, misses } = measure(specs);
    report(t, specs.length, accuracy, misses);
    for (const key of attributes)
      assert.ok(accuracy[key] >= 0.99, `${key} ${accuracy[key]}\n${misses.join("\n")}`);
  });

  it("degrades gracefully when the damage goes past what a generator does", (t) => {
    // Blur σ 1.5-3 px on objects down to 13 px, noise σ 12-25, shifts up to ±30, 9-frame clips
    // (fast motion) smeared over 3 frames: shapes start to melt, so the bar is 95%.
    const specs = degradedSpecs(120, 3, 300_000, [9, 17, 33], { blur: [1.5, 3], noise: [12, 25], shift: 30 });
    const { accuracy, misses } = measure(specs);
    report(t, specs.length, accuracy, misses);
    for (const key of attributes)
      assert.ok(accuracy[key] >= 0.95, `${key} ${accuracy[key]}\n${misses.join("\n")}`);
  });
});
