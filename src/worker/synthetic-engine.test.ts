import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { readModelInfo } from "../pipeline/model-dir.ts";
import { runPipeline } from "../pipeline/run.ts";
import { writeTestModelDir } from "../pipeline/test-support.ts";
import { SyntheticEngine } from "./synthetic-engine.ts";

const spec = {
  prompt: "a red circle moving right on a black background",
  seed: 7,
  profile: "turbo",
  video: { width: 32, height: 32, frames: 9, fps: 8 },
  output: { format: "png-frames" as const },
};

describe("synthetic engine (the load benchmark's worker mode)", () => {
  it("runs every pipeline stage but the denoiser and renames the attempt's files into place", async () => {
    const dir = await writeTestModelDir();
    const out = join(dir, "out");
    try {
      const model = { info: await readModelInfo(dir), engine: new SyntheticEngine() };
      const report = await runPipeline(model, spec, {
        outDir: out,
        name: "ns/job",
        attempt: 2,
        ffmpeg: null,
      });
      const names = await readdir(join(out, "ns"));
      assert.ok(!names.some((n) => n.includes("partial")), `no partial files left: ${names}`);
      assert.equal(report.frames, 9);
      const frames = (await readdir(report.output.path)).sort();
      const outer = createHash("sha256");
      for (const f of frames)
        outer.update(
          createHash("sha256")
            .update(await readFile(join(report.output.path, f)))
            .digest("hex"),
        );
      assert.equal(outer.digest("hex"), report.output.sha256);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("stops between steps when cancelled and leaves no output", async () => {
    const dir = await writeTestModelDir();
    const out = join(dir, "out");
    try {
      const model = { info: await readModelInfo(dir), engine: new SyntheticEngine(50) };
      const abort = new AbortController();
      let steps = 0;
      const run = runPipeline(model, spec, {
        outDir: out,
        name: "ns/job",
        signal: abort.signal,
        ffmpeg: null,
        onProgress: (p) => {
          if (p.stage === "denoise" && p.step === 1) {
            steps = p.step;
            abort.abort();
          }
        },
      });
      await assert.rejects(run, (err: Error & { code?: string }) => err.code === "E_ABORTED");
      assert.equal(steps, 1);
      assert.deepEqual(await readdir(join(out, "ns")).catch(() => []), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
