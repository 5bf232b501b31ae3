import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";

it("cancels on a real SIGINT within one denoising step, removes partial files and exits 130", async () => {
  const out = await mkdtemp(join(tmpdir(), "framefleet-cancel-"));
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(import.meta.dirname, "testdata", "cancel-child.ts"), out],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stdout = "";
  let stderr = "";
  let stepAtSignal = -1;
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  child.stdout.on("data", (d) => {
    stdout += d;
    const steps = [...stdout.matchAll(/step (\d+)/g)].map((m) => Number(m[1]));
    if (stepAtSignal < 0 && steps.includes(2)) {
      stepAtSignal = Math.max(...steps);
      child.kill("SIGINT");
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /^framefleet cancel-test: cancelled; partial files removed\n$/);
  const last = Math.max(...[...stdout.matchAll(/step (\d+)/g)].map((m) => Number(m[1])));
  assert.ok(last <= stepAtSignal + 1, `ran to step ${last} after the signal at step ${stepAtSignal}`);
  assert.deepEqual(await readdir(out), []);
});
