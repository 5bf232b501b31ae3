// Clips from train/render.py, the renderer of the training data, for the analyzer's own tests.
// One Python process renders a whole batch (render_batch.py) because starting numpy per clip
// costs more than analysing the clip.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { Clip } from "./analyzer.ts";
import { Background, Colour, Direction, Shape } from "./vocabulary.ts";

/** What a generator does to a clip and a renderer does not; render_batch.py applies it. */
export interface Degradation {
  /** Gaussian blur sigma in pixels (0 = none). */
  blurSigma: number;
  /** Standard deviation of per-pixel, per-channel Gaussian noise, in 0..255 units. */
  noiseSigma: number;
  /** A constant offset added to each channel. */
  colourShift: readonly [number, number, number];
  /** Each output frame averages this many consecutive rendered frames (1 = none). */
  smearFrames: number;
  /** Seeds the noise. */
  seed: number;
}

export interface RenderSpec {
  seed: number;
  colour?: Colour;
  shape?: Shape;
  direction?: Direction;
  background?: Background;
  width?: number;
  height?: number;
  frames?: number;
  degrade?: Degradation;
}

/** The metadata render.py prints for a clip (the fields the tests read). */
export const RenderedMeta = z.object({
  seed: z.number(),
  caption: z.string(),
  colour: Colour,
  shape: Shape,
  direction: Direction,
  background: Background,
  size: z.number(),
  travel: z.number(),
  width: z.number(),
  height: z.number(),
  frames: z.number(),
  heldOut: z.boolean(),
});
export type RenderedMeta = z.infer<typeof RenderedMeta>;

export interface RenderedClip {
  clip: Clip;
  meta: RenderedMeta;
}

const here = dirname(fileURLToPath(import.meta.url));
export const renderScript = join(here, "..", "..", "train", "render.py");
const batchScript = join(here, "render_batch.py");

function python(args: string[], input?: string): string {
  const result = spawnSync("python3", args, { input, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (result.error)
    throw new Error(`cannot run python3 (${result.error.message}); install Python 3 and numpy`);
  if (result.status !== 0) {
    throw new Error(
      `python3 ${args.join(" ")} exited with ${result.status}: ${result.stderr.trim()}` +
        (/numpy/.test(result.stderr) ? " (install numpy: python3 -m pip install numpy)" : ""),
    );
  }
  return result.stdout;
}

export function renderClips(specs: readonly RenderSpec[]): RenderedClip[] {
  const dir = mkdtempSync(join(tmpdir(), "framefleet-render-"));
  try {
    const out = join(dir, "clips.rgb");
    const metas = z.array(RenderedMeta).parse(JSON.parse(python([batchScript, out], JSON.stringify(specs))));
    const bytes = readFileSync(out);
    let offset = 0;
    return metas.map((meta) => {
      const length = meta.width * meta.height * meta.frames * 3;
      const data = new Uint8Array(bytes.buffer, bytes.byteOffset + offset, length);
      offset += length;
      return { clip: { data, width: meta.width, height: meta.height, frameCount: meta.frames }, meta };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** render.py's own statement of the vocabulary (`--vocab`), to check vocabulary.ts against. */
export function rendererVocabulary(): unknown {
  return JSON.parse(python([renderScript, "--vocab"]));
}
