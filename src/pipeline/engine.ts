// What the pipeline needs from a loaded model: one call that encodes the prompt, denoises and
// decodes, reporting progress per stage and honouring an AbortSignal between denoising steps.
// The native binding (src/native) provides it; tests may pass any object of this shape.
import type { ResolvedKnobs } from "./knobs.ts";

export type EngineRequest = ResolvedKnobs & {
  prompt: string;
  negativePrompt: string;
  seed: number;
  width: number;
  height: number;
  frames: number;
};

/** The stages the engine runs inside one generate call, in order. */
export const ENGINE_STAGES = ["textEncode", "denoise", "decode"] as const;
export type EngineStage = (typeof ENGINE_STAGES)[number];

export interface EngineProgress {
  stage: EngineStage;
  /** Steps done in this stage (denoise: sampling steps). */
  step: number;
  totalSteps: number;
}

export interface EngineResult {
  /** uint8 RGB, `frameCount * height * width * 3` bytes. */
  frames: Uint8Array;
  width: number;
  height: number;
  frameCount: number;
  /** Seconds per engine stage. */
  timings: Partial<Record<EngineStage, number>>;
  /** Network evaluations actually run (TeaCache may skip some); planned ones when absent. */
  nfe?: number;
  /** Which backend ran the model, e.g. "cpu (2 threads, amx kernels)"; "unspecified" when absent. */
  backend?: string;
}

export interface Engine {
  generate(
    request: EngineRequest,
    options: { onProgress?: (p: EngineProgress) => void; signal?: AbortSignal },
  ): Promise<EngineResult>;
}
