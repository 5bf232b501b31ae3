// An engine that skips the denoiser: it draws deterministic frames from the seed at once. Used by
// the operator's load benchmark (`framefleet worker --engine synthetic`), so thousands of jobs
// exercise dispatch, status writes and file output without the cost of generation. Every other
// pipeline stage (validation, encoding, attempt-named files renamed into place) runs for real.
import type { Engine, EngineProgress, EngineRequest, EngineResult } from "../pipeline/engine.ts";

export class SyntheticEngine implements Engine {
  /** `stepMs`: time each sampling step takes (default 0), so tests can act in the middle of a job. */
  constructor(private readonly stepMs = 0) {}

  async generate(
    request: EngineRequest,
    options: { onProgress?: (p: EngineProgress) => void; signal?: AbortSignal },
  ): Promise<EngineResult> {
    const { width, height, frames, seed } = request;
    const data = new Uint8Array(width * height * frames * 3);
    let state = seed >>> 0 || 1;
    for (let f = 0; f < frames; f++) {
      options.signal?.throwIfAborted();
      // xorshift32: a cheap deterministic colour per frame.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      const rgb = [state & 255, (state >>> 8) & 255, (state >>> 16) & 255];
      for (let p = 0; p < width * height; p++) data.set(rgb, (f * width * height + p) * 3);
    }
    for (let step = 1; step <= request.steps; step++) {
      if (this.stepMs > 0) await new Promise((r) => setTimeout(r, this.stepMs));
      // Like the native engine: cancellation takes effect between steps.
      options.signal?.throwIfAborted();
      options.onProgress?.({ stage: "denoise", step, totalSteps: request.steps });
    }
    return {
      frames: data,
      width,
      height,
      frameCount: frames,
      timings: { textEncode: 0, denoise: 0, decode: 0 },
      nfe: 0,
    };
  }
}
