import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatCaption, parseCaption } from "./caption.ts";

describe("captions", () => {
  it("round-trips every part of the grammar", () => {
    const scene = { colour: "pink", shape: "triangle", direction: "up", background: "navy" } as const;
    assert.equal(formatCaption(scene), "a pink triangle moving up on a navy background");
    assert.deepEqual(parseCaption(formatCaption(scene)), scene);
  });

  it("normalises case and punctuation the way the tokenizer does", () => {
    assert.deepEqual(parseCaption("A Red circle, moving LEFT on a black background."), {
      colour: "red",
      shape: "circle",
      direction: "left",
      background: "black",
    });
  });

  it("names the allowed words when a slot holds an unknown one", () => {
    assert.throws(
      () => parseCaption("a teal circle moving left on a black background"),
      /expected a colour \(red, green, blue, yellow, orange, purple, white, pink\) but found "teal"/,
    );
    assert.throws(() => parseCaption("a red hexagon moving left on a black background"), /expected a shape/);
    assert.throws(
      () => parseCaption("a red circle moving sideways on a black background"),
      /expected a direction/,
    );
  });

  it("rejects captions that leave the grammar", () => {
    assert.throws(() => parseCaption("a red circle"), /expected "moving" as word 4/);
    assert.throws(
      () => parseCaption("a red circle moving left on a black background today"),
      /unexpected words/,
    );
    assert.throws(() => parseCaption(""), /expected "a" as word 1/);
  });
});
