// `framefleet generate` end to end on the native engine, with random models written by the
// engine's own tool (native/build/framefleet_bench make-model).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { REPO_ROOT } from "../../pipeline/local.ts";
import { decodePng } from "../../pipeline/png.ts";
import { ReportSchema } from "../../pipeline/report.ts";
import { findFfmpeg } from "../../pipeline/video.ts";

const BIN = join(REPO_ROOT, "bin", "framefleet.js");
const MAKE_MODEL = join(REPO_ROOT, "native", "build", "framefleet_bench");
const missing = !existsSync(MAKE_MODEL) && "the native build (npm run build:native) is missing";
const ffmpeg = await findFfmpeg();

async function randomModel(preset: "tiny" | "bench"): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), "framefleet-random-")), preset);
  const extra = preset === "bench" ? ["--dtype", "BF16", "--no-student"] : [];
  const r = spawnSync(MAKE_MODEL, ["make-model", dir, "--preset", preset, ...extra], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return dir;
}

/** Arguments of `node bin/framefleet.js generate` for a small baseline run. */
function generateArgs(model: string, prompt: string, out: string, size: number, extra: string[]): string[] {
  const video = ["--width", String(size), "--height", String(size), "--frames", "5"];
  return [
    BIN,
    "generate",
    "--model",
    model,
    "--prompt",
    prompt,
    ...video,
    "--profile",
    "baseline",
    "--out",
    out,
    ...extra,
  ];
}

function generate(args: string[]) {
  return spawnSync(process.execPath, args, { encoding: "utf8", timeout: 120_000 });
}

describe("framefleet generate on the native engine", { skip: missing }, () => {
  let tiny = "";
  before(async () => {
    tiny = await randomModel("tiny");
  });

  it("writes the video, the preview and the report it prints with --json", {
    skip: !ffmpeg && "no ffmpeg",
  }, async () => {
    const out = await mkdtemp(join(tmpdir(), "framefleet-gen-"));
    const extra = ["--seed", "3", "--fps", "8", "--name", "clip", "--json"];
    const r = generate(generateArgs(tiny, "a red circle moving left", out, 32, extra));
    assert.equal(r.status, 0, r.stderr);
    const report = ReportSchema.parse(JSON.parse(r.stdout));
    assert.deepEqual(JSON.parse(await readFile(join(out, "clip.json"), "utf8")), report);
    assert.equal(report.model, "random-tiny");
    assert.equal(report.nfe, 8, "4 Euler steps with CFG");
    assert.match(
      report.backend,
      /^cpu \(\d+ threads?, (scalar|avx2|avx512|vnni|amx) kernels\)$/,
      "the report names the backend that ran",
    );
    assert.deepEqual(
      [report.width, report.height, report.frames, report.fps, report.seed],
      [32, 32, 5, 8, 3],
    );
    for (const stage of ["load", "textEncode", "denoise", "decode", "encode", "preview", "total"] as const) {
      assert.ok((report.timings[stage] ?? -1) >= 0, stage);
    }
    assert.ok(report.timings.denoise > 0);
    assert.deepEqual((await readdir(out)).sort(), ["clip.json", "clip.mp4", "clip.preview.png"]);
    const entries = "stream=codec_name,pix_fmt,nb_read_frames";
    const probe = spawnSync(
      "ffprobe",
      ["-v", "error", "-count_frames", "-show_entries", entries, "-of", "csv=p=0", report.output.path],
      { encoding: "utf8" },
    );
    assert.equal(probe.stdout.trim(), "h264,yuv420p,5");
    assert.ok(decodePng(await readFile(report.preview.path)).width > 32);
    const events = r.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const denoise = events.filter((e) => e.stage === "denoise" && e.step > 0).map((e) => e.step);
    assert.deepEqual(denoise, [1, 2, 3, 4], "progress arrives as JSON lines off a terminal");
  });

  it("generates the same pixels for the same seed", async () => {
    const hashes = [];
    for (const seed of ["5", "5", "6"]) {
      const out = await mkdtemp(join(tmpdir(), "framefleet-seed-"));
      const extra = ["--seed", seed, "--format", "png-frames", "--json"];
      const r = generate(generateArgs(tiny, "a blue square moving up", out, 32, extra));
      assert.equal(r.status, 0, r.stderr);
      hashes.push(ReportSchema.parse(JSON.parse(r.stdout)).output.sha256);
    }
    assert.equal(hashes[0], hashes[1]);
    assert.notEqual(hashes[0], hashes[2]);
  });

  it("stops within one denoising step on SIGINT, removes partial files and exits 130", async () => {
    const model = await randomModel("bench");
    const out = await mkdtemp(join(tmpdir(), "framefleet-sigint-"));
    const args = generateArgs(model, "a red circle moving left", out, 64, ["--steps", "50"]);
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let stepAtSignal = -1;
    const steps = () =>
      stderr
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l))
        .filter((e) => e.stage === "denoise")
        .map((e) => e.step as number);
    child.stderr.on("data", (d) => {
      stderr += d;
      if (stepAtSignal < 0 && steps().includes(2)) {
        stepAtSignal = Math.max(...steps());
        child.kill("SIGINT");
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /framefleet generate: cancelled; partial files removed\n$/);
    const last = Math.max(...steps());
    assert.ok(
      last <= stepAtSignal + 1 && last < 50,
      `ran to step ${last} after the signal at ${stepAtSignal}`,
    );
    assert.deepEqual(await readdir(out), []);
  });
});
