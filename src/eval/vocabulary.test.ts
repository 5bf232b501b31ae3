import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rendererVocabulary } from "./render.ts";
import {
  backgroundRgb,
  backgrounds,
  colourRgb,
  colours,
  directions,
  heldOutCombinations,
  isHeldOut,
  shapes,
} from "./vocabulary.ts";

describe("the scene vocabulary", () => {
  it("is the renderer's, word for word and colour for colour", () => {
    const v = rendererVocabulary() as {
      colours: Record<string, number[]>;
      shapes: string[];
      directions: string[];
      backgrounds: Record<string, number[]>;
      heldOut: string[][];
    };
    assert.deepEqual(v.colours, Object.fromEntries(colours.map((c) => [c, [...colourRgb[c]]])));
    assert.deepEqual(v.backgrounds, Object.fromEntries(backgrounds.map((b) => [b, [...backgroundRgb[b]]])));
    assert.deepEqual(v.shapes, [...shapes]);
    assert.deepEqual(v.directions, [...directions]);
    assert.deepEqual(
      v.heldOut,
      heldOutCombinations.map((h) => [h.colour, h.shape, h.direction]),
    );
  });

  it("marks only the listed triples as held out", () => {
    let count = 0;
    for (const colour of colours) {
      for (const shape of shapes) {
        for (const direction of directions) if (isHeldOut({ colour, shape, direction })) count++;
      }
    }
    assert.equal(count, heldOutCombinations.length);
    assert.ok(isHeldOut({ colour: "green", shape: "circle", direction: "up" }));
    assert.ok(!isHeldOut({ colour: "green", shape: "circle", direction: "down" }));
  });
});
