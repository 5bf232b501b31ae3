import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseCaption } from "../eval/caption.ts";
import { isHeldOut } from "../eval/vocabulary.ts";
import { benchPrompts, benchRows, median, psnr, runBench } from "./bench.ts";
import { testModel } from "./test-support.ts";

describe("bench", () => {
  it("has the decomposition rows, each technique alone, then turbo", () => {
    assert.deepEqual(
      benchRows().map((r) => r.name),
      ["baseline", "+w8a8", "+sage", "+sla", "+teacache", "+rcm", "turbo"],
    );
  });

  it("builds a prompt suite of seen and held-out combinations the grammar parses", () => {
    const suite = benchPrompts(16);
    assert.equal(suite.length, 16);
    assert.equal(new Set(suite.map((p) => p.prompt)).size, 16);
    for (const item of suite) {
      const scene = parseCaption(item.prompt);
      assert.equal(isHeldOut(scene), item.heldOut, item.prompt);
    }
    assert.equal(suite.filter((p) => p.heldOut).length, 8);
    assert.deepEqual(benchPrompts(4), suite.slice(0, 4), "the quick suite is the start of the full one");
  });

  it("computes PSNR and medians", () => {
    const a = new Uint8Array([0, 0, 0, 0]);
    assert.equal(psnr(a, a), 100);
    assert.equal(psnr(a, new Uint8Array([255, 255, 255, 255])), 0);
    assert.ok(Math.abs(psnr(a, new Uint8Array([10, 10, 10, 10])) - 20 * Math.log10(25.5)) < 1e-9);
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
  });

  it("measures every row against the baseline of the same run", async () => {
    const model = await testModel();
    const rows = await runBench(model, {
      prompts: [
        { prompt: "a white square moving right on a black background", seed: 1, heldOut: false },
        { prompt: "a red circle moving left on a black background", seed: 2, heldOut: false },
      ],
      rows: benchRows({ slaTopK: 0.5 }).filter((r) => ["baseline", "+sla", "turbo"].includes(r.name)),
      video: { width: 32, height: 32, frames: 9, fps: 8 },
    });
    assert.deepEqual(
      rows.map((r) => [r.profile, r.nfe, r.runs, r.knobs.attention, r.knobs.slaTopK]),
      [
        ["baseline", 12, 2, "dense", undefined],
        ["+sla", 12, 2, "sla", 0.5],
        ["turbo", 2, 2, "sla", 0.5],
      ],
    );
    const [baseline, sla, turbo] = rows;
    assert.equal(baseline?.speedup, 1);
    assert.equal(baseline?.psnrVsBaseline, null);
    assert.equal(sla?.psnrVsBaseline, 100, "the test engine draws the same clip for every knob");
    assert.ok(Math.abs((turbo?.denoiseSpeedup ?? 0) - 3) < 1e-9, "6 steps of 10 ms against 2");
    assert.ok(turbo && baseline && Math.abs(turbo.speedup - baseline.seconds / turbo.seconds) < 1e-12);
    // The test engine always draws a white square moving right: one prompt of two matches.
    assert.deepEqual(
      rows.map((r) => r.promptAccuracy),
      [0.5, 0.5, 0.5],
    );
  });
});
