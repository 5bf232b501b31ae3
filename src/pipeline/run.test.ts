import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { decodePng } from "./png.ts";
import { ReportSchema } from "./report.ts";
import { type PipelineSpec, type ProgressEvent, runPipeline } from "./run.ts";
import { TEST_CONFIG, testModel } from "./test-support.ts";
import { findFfmpeg } from "./video.ts";

const ffmpeg = await findFfmpeg();

function spec(overrides: Partial<PipelineSpec> = {}): PipelineSpec {
  return {
    prompt: "a red circle moving right on a black background",
    seed: 7,
    profile: "baseline",
    video: { width: 32, height: 32, frames: 9, fps: 8 },
    output: { format: "mp4" },
    ...overrides,
  };
}

const outDir = () => mkdtemp(join(tmpdir(), "framefleet-out-"));

describe("runPipeline", () => {
  it("writes an H.264 yuv420p MP4, a preview and a report that says what ran", {
    skip: !ffmpeg && "ffmpeg not installed",
  }, async () => {
    const model = await testModel();
    const dir = await outDir();
    const events: ProgressEvent[] = [];
    const report = await runPipeline(model, spec(), {
      outDir: dir,
      name: "clip",
      onProgress: (e) => events.push(e),
    });

    assert.deepEqual(ReportSchema.parse(JSON.parse(await readFile(join(dir, "clip.json"), "utf8"))), report);
    assert.equal(report.output.path, join(dir, "clip.mp4"));
    assert.equal(report.output.format, "mp4");
    assert.equal(report.nfe, 12, "6 Euler steps with CFG are 12 evaluations");
    assert.equal(report.backend, "unspecified", "an engine that names no backend");
    assert.deepEqual(report.knobs, TEST_CONFIG.profiles.baseline, "baseline's knobs, all set");
    assert.equal(report.timings.denoise, 0.06, "engine timings are reported as they come");
    // Encode (ffmpeg, another process) and preview run at the same time.
    assert.ok(report.timings.total >= Math.max(report.timings.encode, report.timings.preview));
    assert.deepEqual([report.width, report.height, report.frames, report.fps], [32, 32, 9, 8]);

    const probe = spawnSync(
      "ffprobe",
      [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-count_frames",
        "-show_entries",
        "stream=codec_name,pix_fmt,width,height,nb_read_frames",
        "-of",
        "json",
        report.output.path,
      ],
      { encoding: "utf8" },
    );
    const stream = JSON.parse(probe.stdout).streams[0];
    assert.deepEqual(stream, {
      codec_name: "h264",
      width: 32,
      height: 32,
      pix_fmt: "yuv420p",
      nb_read_frames: "9",
    });

    const preview = decodePng(await readFile(report.preview.path));
    assert.ok(preview.width > 32 && preview.height >= 32, "the contact sheet holds several frames");
    assert.deepEqual((await readdir(dir)).sort(), ["clip.json", "clip.mp4", "clip.preview.png"]);

    const stages = [...new Set(events.map((e) => e.stage))];
    assert.deepEqual(stages, ["validate", "textEncode", "denoise", "decode", "encode", "preview"]);
    assert.deepEqual(
      events.filter((e) => e.stage === "denoise").map((e) => e.step),
      [1, 2, 3, 4, 5, 6],
    );
  });

  it("falls back to an animated PNG with a note when ffmpeg is missing", async () => {
    const model = await testModel();
    const dir = await outDir();
    const notices: string[] = [];
    const report = await runPipeline(model, spec(), {
      outDir: dir,
      ffmpeg: null,
      onNotice: (m) => notices.push(m),
    });
    assert.equal(report.output.format, "apng");
    assert.equal(report.output.requestedFormat, "mp4");
    assert.equal(report.output.path, join(dir, "video.apng"));
    assert.match(notices[0] ?? "", /ffmpeg was not found.*apt-get install ffmpeg.*animated PNG/);
    assert.equal(report.output.note, notices[0]);
    const apng = decodePng(await readFile(report.output.path));
    assert.equal(apng.chunks.filter((c) => c === "fcTL").length, 9);
    assert.equal(apng.chunks.filter((c) => c === "fdAT").length > 0, true);
    // The default image is frame 0: the square's left edge at x = 0.
    assert.equal(apng.rgb[0], 255);
    assert.equal(report.output.bytes, (await readFile(report.output.path)).length);
  });

  it("writes png-frames as a directory of numbered frames", async () => {
    const model = await testModel();
    const dir = await outDir();
    const report = await runPipeline(model, spec({ output: { format: "png-frames", path: "jobs/one" } }), {
      outDir: dir,
      ffmpeg: null,
    });
    assert.equal(report.output.path, join(dir, "jobs", "one"));
    const files = await readdir(report.output.path);
    assert.equal(files.length, 9);
    assert.equal(files[0], "frame-0000.png");
    const frame4 = decodePng(await readFile(join(report.output.path, "frame-0004.png")));
    assert.equal(frame4.rgb[4 * 3], 255, "frame 4 has the square starting at x = 4");
    assert.equal(frame4.rgb[3 * 3], 0);
    assert.ok(existsSync(join(dir, "jobs", "one.preview.png")));
  });

  it("applies the profile and the job's overrides to the engine request", async () => {
    const model = await testModel();
    await runPipeline(
      model,
      spec({
        profile: "turbo",
        acceleration: { slaTopK: 0.25, attention: "sla" },
        negativePrompt: "blue square",
      }),
      { outDir: await outDir(), ffmpeg: null },
    );
    const request = model.engine.requests[0];
    assert.deepEqual(request, {
      weights: "student",
      sampler: "rcm",
      steps: 2,
      guidanceScale: 1,
      attention: "sla",
      slaTopK: 0.25,
      linear: "w8a8",
      teaCache: 0,
      prompt: "a red circle moving right on a black background",
      negativePrompt: "blue square",
      seed: 7,
      width: 32,
      height: 32,
      frames: 9,
    });
  });

  it("cancels within one denoising step and leaves no file behind", async () => {
    const model = await testModel(20);
    const dir = await outDir();
    const controller = new AbortController();
    const steps: number[] = [];
    const run = runPipeline(model, spec(), {
      outDir: dir,
      signal: controller.signal,
      ffmpeg: null,
      onProgress: (e) => {
        if (e.stage !== "denoise") return;
        steps.push(e.step);
        if (e.step === 2) controller.abort();
      },
    });
    await assert.rejects(run, { code: "E_ABORTED" });
    assert.deepEqual(steps, [1, 2], "no step runs after the abort");
    assert.deepEqual(await readdir(dir), []);
  });

  it("removes its temporary files when a later stage fails", async () => {
    const model = await testModel();
    const dir = await outDir();
    let tempSeen = false;
    const bogus = { path: "/nonexistent/ffmpeg-that-fails", version: "0" };
    await assert.rejects(
      runPipeline(model, spec({ output: { format: "mp4" } }), {
        outDir: dir,
        attempt: 3,
        ffmpeg: bogus,
        onProgress: (e) => {
          if (e.stage === "encode" && e.step === 0) tempSeen = true;
        },
      }),
      (err: Error & { code?: string }) => err.code === "E_INTERNAL" || err.code === "ENOENT",
    );
    assert.ok(tempSeen);
    assert.deepEqual(await readdir(dir), []);
  });

  it("names attempt-specific temporary files and renames them into place", async () => {
    const model = await testModel();
    const dir = await outDir();
    let during: string[] = [];
    await runPipeline(model, spec(), {
      outDir: dir,
      name: "job",
      attempt: 3,
      ffmpeg: null,
      onProgress: (e) => {
        if ((e.stage === "encode" || e.stage === "preview") && e.step === 1) during = readdirSync(dir).sort();
      },
    });
    assert.deepEqual(during, [".job.apng.attempt-3.partial", ".job.preview.png.attempt-3.partial"]);
    assert.deepEqual((await readdir(dir)).sort(), ["job.apng", "job.json", "job.preview.png"]);
  });
});

describe("runPipeline rejects bad input before the engine runs", () => {
  const cases: [string, Partial<PipelineSpec>, RegExp][] = [
    [
      "unknown prompt words, naming them and the vocabulary command",
      { prompt: "a purple hexagon moving sideways" },
      /^prompt: words 'hexagon', 'sideways' not in the vocabulary of test-shapes \(`framefleet vocab --model .*` lists the 22 words/,
    ],
    [
      "a width off the grid",
      { video: { width: 40, height: 32, frames: 9, fps: 8 } },
      /^video\.width: must be a multiple of 16 between 16 and 128 for test-shapes \(got 40\)$/,
    ],
    [
      "frames not of the form 1 + 4k",
      { video: { width: 32, height: 32, frames: 10, fps: 8 } },
      /^video\.frames: must be of the form 1 \+ 4k, at most 33, for test-shapes \(got 10\)$/,
    ],
    ["too many frames", { video: { width: 32, height: 32, frames: 37, fps: 8 } }, /at most 33.*got 37/],
    [
      "an unknown profile",
      { profile: "warp" },
      /^profile: 'warp' is not a profile of test-shapes \(allowed: baseline, turbo\)$/,
    ],
    [
      "too many rcm steps",
      { profile: "turbo", sampling: { steps: 8 } },
      /^sampling\.steps: the rcm sampler runs 1 to 4 steps \(got 8\)$/,
    ],
  ];
  for (const [what, overrides, message] of cases) {
    it(`rejects ${what}`, async () => {
      const model = await testModel();
      const dir = await outDir();
      await assert.rejects(
        runPipeline(model, spec(overrides), { outDir: dir, ffmpeg: null }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, "E_BAD_REQUEST");
          assert.match(err.message, message);
          return true;
        },
      );
      assert.equal(model.engine.requests.length, 0);
      assert.deepEqual(await readdir(dir), []);
    });
  }

  it("rejects the student profile when the model has no student weights", async () => {
    const model = await testModel(0, { student: false });
    await assert.rejects(
      runPipeline(model, spec({ profile: "turbo" }), { outDir: await outDir(), ffmpeg: null }),
      {
        code: "E_BAD_REQUEST",
        message: /weights: student needs student\.safetensors/,
      },
    );
  });
});
