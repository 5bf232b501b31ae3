import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Engine, EngineRequest } from "../pipeline/engine.ts";
import { readModelInfo } from "../pipeline/model-dir.ts";
import { decodePng } from "../pipeline/png.ts";
import type { PipelineModel } from "../pipeline/run.ts";
import { writeTestModelDir } from "../pipeline/test-support.ts";
import { parseCaption } from "./caption.ts";
import { runEval } from "./run-eval.ts";
import { synthClip } from "./testing/synth.ts";
import type { Direction } from "./vocabulary.ts";

const opposite: Record<Direction, Direction> = { left: "right", right: "left", up: "down", down: "up" };

/** An engine that draws what the prompt asks, except that the turbo profile (rcm) reverses the motion. */
function drawingEngine(calls: EngineRequest[]): Engine {
  return {
    async generate(request) {
      calls.push(request);
      const scene = parseCaption(request.prompt);
      const direction = request.sampler === "rcm" ? opposite[scene.direction] : scene.direction;
      const clip = synthClip(
        { ...scene, direction },
        { width: request.width, height: request.height, frames: request.frames },
      );
      return {
        frames: clip.data,
        width: clip.width,
        height: clip.height,
        frameCount: clip.frameCount,
        timings: {},
      };
    },
  };
}

async function testModel(calls: EngineRequest[]): Promise<PipelineModel> {
  const dir = await writeTestModelDir();
  const configPath = join(dir, "config.json");
  const config = JSON.parse(await readFile(configPath, "utf8"));
  config.video = { ...config.video, width: 64, height: 64, frames: 9 };
  await writeFile(configPath, JSON.stringify(config));
  return { info: await readModelInfo(dir), engine: drawingEngine(calls) };
}

describe("runEval", () => {
  it("scores each profile per split from what the analyzer reads in the generated clips", async () => {
    const calls: EngineRequest[] = [];
    const report = await runEval(await testModel(calls), {
      profiles: ["baseline", "turbo"],
      prompts: 3,
      seeds: 2,
    });
    assert.equal(calls.length, 2 * 2 * 3 * 2);
    assert.deepEqual(report.suite, { prompts: 3, seeds: 2, width: 64, height: 64, frames: 9 });
    const all = { overall: 1, colour: 1, shape: 1, direction: 1, background: 1, n: 6 };
    assert.deepEqual(report.profiles.baseline?.seen, all);
    assert.deepEqual(report.profiles.baseline?.heldOut, all);
    const reversed = { ...all, overall: 0, direction: 0 };
    assert.deepEqual(report.profiles.turbo?.seen, reversed);
    assert.deepEqual(report.profiles.turbo?.heldOut, reversed);
    assert.equal(report.profiles.turbo?.knobs.sampler, "rcm");
    const miss = report.profiles.turbo?.cases[0];
    assert.ok(miss);
    assert.equal(miss.read.direction, opposite[parseCaption(miss.prompt).direction]);
    assert.equal(miss.verdict.direction, false);
  });

  it("runs each profile with its own knobs, the model's video size and the suite's seeds", async () => {
    const calls: EngineRequest[] = [];
    await runEval(await testModel(calls), { profiles: ["turbo"], prompts: 1, seeds: 2 });
    assert.deepEqual(
      calls.map((c) => [c.sampler, c.steps, c.attention, c.linear, c.seed, c.width, c.height, c.frames]),
      [
        ["rcm", 2, "sla", "w8a8", 1, 64, 64, 9],
        ["rcm", 2, "sla", "w8a8", 2, 64, 64, 9],
        ["rcm", 2, "sla", "w8a8", 1, 64, 64, 9],
        ["rcm", 2, "sla", "w8a8", 2, 64, 64, 9],
      ],
    );
  });

  it("writes a contact sheet of every clip when asked, named by split, prompt, seed and profile", async () => {
    const sheetsDir = join(await mkdtemp(join(tmpdir(), "framefleet-eval-")), "sheets");
    const report = await runEval(await testModel([]), {
      profiles: ["baseline", "turbo"],
      prompts: 1,
      seeds: 1,
      sheetsDir,
    });
    const files = (await readdir(sheetsDir)).sort();
    assert.equal(files.length, 4);
    const first = report.profiles.baseline?.cases[0];
    assert.ok(first?.sheet);
    assert.equal(
      first.sheet,
      join(sheetsDir, `seen-000-${first.prompt.replaceAll(" ", "-")}-seed1.baseline.png`),
    );
    assert.ok(files.includes(`seen-000-${first.prompt.replaceAll(" ", "-")}-seed1.turbo.png`));
    const png = decodePng(await readFile(first.sheet));
    // 8 tiles of 64 px in one row, 4 px gaps
    assert.equal(png.width, 8 * 64 + 9 * 4);
    assert.equal(png.height, 64 + 2 * 4);
  });

  it("writes one comparison PNG: a row per clip, each profile's frames side by side", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "framefleet-eval-")), "docs", "compare.png");
    const calls: EngineRequest[] = [];
    await runEval(await testModel(calls), {
      profiles: ["baseline", "turbo"],
      prompts: 2,
      seeds: 1,
      compareSheet: file,
      compareRows: 3,
    });
    const png = decodePng(await readFile(file));
    // 3 rows of 64 px with 4 px gaps; 2 profiles x 8 tiles of 64 px, 4 px between tiles,
    // 16 px between profiles, 4 px margins
    assert.equal(png.height, 3 * 64 + 4 * 4);
    assert.equal(png.width, 2 * (8 * 64 + 7 * 4) + 16 + 2 * 4);
    // Row 0, baseline block, first tile: the clip of the suite's first request (its frame 0)
    const first = calls[0];
    assert.ok(first);
    const scene = parseCaption(first.prompt);
    const clip = synthClip(scene, { width: 64, height: 64, frames: 9 });
    for (const [x, y] of [
      [0, 0],
      [31, 40],
      [63, 63],
    ] as const) {
      const at = ((4 + y) * png.width + 4 + x) * 3;
      const want = (y * 64 + x) * 3;
      assert.deepEqual(
        [...png.rgb.subarray(at, at + 3)],
        [...clip.data.subarray(want, want + 3)],
        `pixel ${x},${y}`,
      );
    }
  });

  it("runs NAME@N as that profile in N steps, and rejects a step count that is not a positive integer", async () => {
    const calls: EngineRequest[] = [];
    const report = await runEval(await testModel(calls), {
      profiles: ["baseline@2", "turbo@1"],
      prompts: 1,
      seeds: 1,
    });
    assert.deepEqual(Object.keys(report.profiles), ["baseline@2", "turbo@1"]);
    assert.equal(report.profiles["baseline@2"]?.knobs.steps, 2);
    assert.equal(report.profiles["baseline@2"]?.knobs.sampler, "euler");
    assert.equal(report.profiles["turbo@1"]?.knobs.sampler, "rcm");
    assert.deepEqual(
      calls.map((c) => c.steps),
      [2, 2, 1, 1],
    );
    for (const bad of ["baseline@0", "baseline@x", "turbo@1.5"]) {
      await assert.rejects(
        runEval(await testModel([]), { profiles: [bad], prompts: 1, seeds: 1 }),
        (err: Error & { code?: string }) => err.code === "E_BAD_REQUEST" && err.message.includes(`'${bad}'`),
      );
    }
    await assert.rejects(
      runEval(await testModel([]), { profiles: ["warp@2"], prompts: 1, seeds: 1 }),
      /profile: 'warp' is not a profile/,
    );
  });

  it("runs NAME@N:KEY=VALUE,... as that profile with those knobs, and rejects knobs a profile cannot have", async () => {
    const calls: EngineRequest[] = [];
    const specs = ["baseline@4:guidanceScale=4", "turbo:linear=fp32,attention=sage"];
    const report = await runEval(await testModel(calls), { profiles: specs, prompts: 1, seeds: 1 });
    const [teacher, turbo] = specs.map((s) => report.profiles[s]?.knobs);
    assert.deepEqual(
      [teacher?.sampler, teacher?.steps, teacher?.guidanceScale, teacher?.attention],
      ["euler", 4, 4, "dense"],
    );
    assert.deepEqual(
      [turbo?.sampler, turbo?.linear, turbo?.attention, turbo?.slaTopK],
      ["rcm", "fp32", "sage", undefined],
    );
    assert.deepEqual(
      calls.map((c) => [c.steps, c.guidanceScale, c.linear]),
      [
        [4, 4, "fp32"],
        [4, 4, "fp32"],
        [2, 1, "fp32"],
        [2, 1, "fp32"],
      ],
    );
    for (const bad of ["turbo:linear=int4", "turbo:warp=1", "turbo:linear", "baseline:steps=0"]) {
      await assert.rejects(
        runEval(await testModel([]), { profiles: [bad], prompts: 1, seeds: 1 }),
        (err: Error & { code?: string }) => err.code === "E_BAD_REQUEST" && err.message.includes(`'${bad}'`),
      );
    }
  });

  it("rejects an unknown profile before generating anything", async () => {
    const calls: EngineRequest[] = [];
    await assert.rejects(
      runEval(await testModel(calls), { profiles: ["baseline", "fast"], prompts: 1, seeds: 1 }),
      /profile: 'fast' is not a profile of test-shapes \(allowed: baseline, turbo\)/,
    );
    assert.equal(calls.length, 0);
  });

  it("rejects a model whose vocabulary lacks the suite's words before generating anything", async () => {
    const calls: EngineRequest[] = [];
    const model = await testModel(calls);
    const info = { ...model.info, vocab: model.info.vocab.filter((w) => w !== "navy" && w !== "gray") };
    await assert.rejects(
      runEval({ ...model, info }, { profiles: ["baseline"], prompts: 8, seeds: 1 }),
      /not in the vocabulary of test-shapes/,
    );
    assert.equal(calls.length, 0);
  });

  it("stops when its signal is aborted", async () => {
    const calls: EngineRequest[] = [];
    const controller = new AbortController();
    await assert.rejects(
      runEval(await testModel(calls), {
        profiles: ["baseline"],
        prompts: 4,
        seeds: 1,
        signal: controller.signal,
        onCase: ({ done }) => {
          if (done === 2) controller.abort();
        },
      }),
      { name: "AbortError" },
    );
    assert.equal(calls.length, 2);
  });
});
