// Child process for the Ctrl-C test: runs the pipeline on the slow test engine under the same
// signal wiring the CLI commands use, printing each denoising step on stdout.
import { runCancellable } from "../local.ts";
import { runPipeline } from "../run.ts";
import { testModel } from "../test-support.ts";

const outDir = process.argv[2] ?? "out";
process.exitCode = await runCancellable("cancel-test", async (signal) => {
  const model = await testModel(150);
  await runPipeline(
    model,
    {
      prompt: "a red circle moving right on a black background",
      seed: 1,
      profile: "baseline",
      video: { width: 32, height: 32, frames: 9, fps: 8 },
      output: { format: "mp4" },
      sampling: { steps: 40 },
    },
    {
      outDir,
      signal,
      onProgress: (e) => {
        if (e.stage === "denoise") process.stdout.write(`step ${e.step}\n`);
      },
    },
  );
  return 0;
});
