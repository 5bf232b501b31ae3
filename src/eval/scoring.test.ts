import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClipAnalysis } from "./analyzer.ts";
import { judge, scoreProfile, scoreVerdicts, type Verdict } from "./scoring.ts";
import type { EvalCase } from "./suite.ts";
import type { Scene } from "./vocabulary.ts";

const scene: Scene = { colour: "blue", shape: "square", direction: "right", background: "black" };

function reading(
  over: Partial<Record<"colour" | "shape" | "direction" | "background", string | null>>,
  found = true,
) {
  const v = { colour: "blue", shape: "square", direction: "right", background: "black", ...over };
  return {
    found,
    framesWithObject: found ? 9 : 0,
    background: { value: v.background, confidence: 1, rgb: [15, 15, 15] },
    colour: { value: v.colour, confidence: 1, rgb: [50, 90, 230] },
    shape: { value: v.shape, confidence: 1, features: null },
    direction: { value: v.direction, confidence: 1, velocity: { x: 1, y: 0 } },
  } as ClipAnalysis;
}

const verdict = (colour: boolean, shape: boolean, direction: boolean): Verdict => ({
  colour,
  shape,
  direction,
  background: true,
  overall: colour && shape && direction,
});

describe("judge", () => {
  it("passes a clip whose every attribute matches the prompt", () => {
    assert.deepEqual(judge(reading({}), scene), verdict(true, true, true));
  });

  it("fails overall on any one wrong attribute, and only that attribute", () => {
    assert.deepEqual(judge(reading({ direction: "left" }), scene), verdict(true, true, false));
    assert.deepEqual(judge(reading({ colour: "purple" }), scene), verdict(false, true, true));
    assert.deepEqual(judge(reading({ direction: null }), scene), verdict(true, true, false));
  });

  it("keeps the background out of overall", () => {
    const v = judge(reading({ background: "navy" }), scene);
    assert.equal(v.background, false);
    assert.equal(v.overall, true);
  });

  it("fails every object attribute when no object was found", () => {
    assert.deepEqual(judge(reading({}, false), scene), { ...verdict(false, false, false), background: true });
  });
});

describe("scores", () => {
  it("counts fractions per attribute", () => {
    const s = scoreVerdicts([
      verdict(true, true, true),
      verdict(true, false, true),
      verdict(false, true, true),
      verdict(true, true, false),
    ]);
    assert.deepEqual(s, { overall: 0.25, colour: 0.75, shape: 0.75, direction: 0.75, background: 1, n: 4 });
  });

  it("reports zeros for an empty split", () => {
    assert.deepEqual(scoreVerdicts([]), {
      overall: 0,
      colour: 0,
      shape: 0,
      direction: 0,
      background: 0,
      n: 0,
    });
  });

  it("splits seen from held-out", () => {
    const c = (split: EvalCase["split"]): EvalCase => ({ split, scene, prompt: "", seed: 1 });
    const score = scoreProfile([
      { case: c("seen"), verdict: verdict(true, true, true) },
      { case: c("seen"), verdict: verdict(true, true, true) },
      { case: c("heldOut"), verdict: verdict(false, true, true) },
    ]);
    assert.equal(score.seen.n, 2);
    assert.equal(score.seen.overall, 1);
    assert.equal(score.heldOut.n, 1);
    assert.equal(score.heldOut.overall, 0);
    assert.equal(score.heldOut.colour, 0);
  });
});
