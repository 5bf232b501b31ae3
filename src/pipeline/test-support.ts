// Test doubles for the pipeline's own tests: a model directory with config.json and vocab.txt
// (docs/MODEL.md), and an engine that draws a moving square step by step, honouring the signal
// between steps like the native engine does.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backgrounds, colours, directions, shapes } from "../eval/vocabulary.ts";
import type { Engine, EngineRequest, EngineResult } from "./engine.ts";
import { readModelInfo } from "./model-dir.ts";
import type { PipelineModel } from "./run.ts";

/** The tiny-shapes grammar's words (docs/DATASET.md), so bench prompts are valid here too. */
export const TEST_WORDS = [
  "a",
  "moving",
  "on",
  "background",
  ...colours,
  ...shapes,
  ...directions,
  ...backgrounds,
];

export const TEST_CONFIG = {
  format: "framefleet-dit-v1",
  name: "test-shapes",
  text: { vocab_size: TEST_WORDS.length + 2, max_tokens: 16, dim: 16, layers: 1, heads: 2, ffn_dim: 32 },
  dit: { in_channels: 4, patch_size: [1, 2, 2], dim: 32, layers: 1, heads: 2, ffn_dim: 64, freq_dim: 16 },
  vae: { latent_channels: 4, channels: [8, 8, 8, 8], temporal_upsample: [true, true, false] },
  video: {
    width: 32,
    height: 32,
    frames: 9,
    fps: 8,
    spatial_multiple: 16,
    max_width: 128,
    max_height: 128,
    max_frames: 33,
  },
  sampling: { steps: 6, guidance_scale: 5.0, shift: 3.0, sigma_max: 80.0 },
  profiles: {
    baseline: {
      weights: "dit",
      sampler: "euler",
      steps: 6,
      guidanceScale: 5,
      attention: "dense",
      linear: "fp32",
      teaCache: 0,
    },
    turbo: {
      weights: "student",
      sampler: "rcm",
      steps: 2,
      guidanceScale: 1,
      attention: "sla",
      slaTopK: 0.5,
      linear: "w8a8",
      teaCache: 0,
    },
  },
};

export async function writeTestModelDir(options: { student?: boolean } = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "framefleet-model-"));
  await writeFile(join(dir, "config.json"), JSON.stringify(TEST_CONFIG, null, 2));
  await writeFile(join(dir, "vocab.txt"), `${["<pad>", "<bos>", ...TEST_WORDS].join("\n")}\n`);
  if (options.student !== false) await writeFile(join(dir, "student.safetensors"), "");
  return dir;
}

/** Draws a white square moving right on black: frame f has the square at x = f. */
export function drawFrames(width: number, height: number, frames: number): Uint8Array {
  const data = new Uint8Array(frames * width * height * 3);
  const side = Math.max(2, Math.floor(width / 4));
  for (let f = 0; f < frames; f++) {
    for (let y = 0; y < side; y++) {
      for (let x = f; x < Math.min(width, f + side); x++) {
        data.fill(255, ((f * height + y) * width + x) * 3, ((f * height + y) * width + x) * 3 + 3);
      }
    }
  }
  return data;
}

export class FakeEngine implements Engine {
  requests: EngineRequest[] = [];
  constructor(private readonly stepDelayMs = 0) {}

  async generate(
    request: EngineRequest,
    options: {
      onProgress?: (p: {
        stage: "textEncode" | "denoise" | "decode";
        step: number;
        totalSteps: number;
      }) => void;
      signal?: AbortSignal;
    },
  ): Promise<EngineResult> {
    this.requests.push(request);
    options.onProgress?.({ stage: "textEncode", step: 1, totalSteps: 1 });
    for (let step = 1; step <= request.steps; step++) {
      if (options.signal?.aborted) {
        throw Object.assign(new Error("generation aborted"), { code: "E_ABORTED" });
      }
      await new Promise((r) => setTimeout(r, this.stepDelayMs));
      options.onProgress?.({ stage: "denoise", step, totalSteps: request.steps });
    }
    options.onProgress?.({ stage: "decode", step: 1, totalSteps: 1 });
    return {
      frames: drawFrames(request.width, request.height, request.frames),
      width: request.width,
      height: request.height,
      frameCount: request.frames,
      timings: { textEncode: 0.001, denoise: 0.01 * request.steps, decode: 0.002 },
    };
  }
}

export async function testModel(
  stepDelayMs = 0,
  options: { student?: boolean } = {},
): Promise<PipelineModel & { engine: FakeEngine }> {
  const info = await readModelInfo(await writeTestModelDir(options));
  return { info, engine: new FakeEngine(stepDelayMs) };
}
