import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseCaption } from "./caption.ts";
import { buildSuite, maxPromptsPerSplit } from "./suite.ts";
import { isHeldOut } from "./vocabulary.ts";

function spread(values: string[]): number {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return Math.max(...counts.values()) - Math.min(...counts.values());
}

describe("buildSuite", () => {
  it("gives each split its prompts under every seed", () => {
    const suite = buildSuite({ prompts: 5, seeds: 3 });
    assert.equal(suite.length, 2 * 5 * 3);
    for (const split of ["seen", "heldOut"] as const) {
      const cases = suite.filter((c) => c.split === split);
      assert.equal(new Set(cases.map((c) => c.prompt)).size, 5);
      assert.deepEqual([...new Set(cases.map((c) => c.seed))].sort(), [1, 2, 3]);
    }
  });

  it("puts held-out combinations only in the held-out split, as valid captions", () => {
    for (const c of buildSuite({ prompts: 30, seeds: 1 })) {
      assert.deepEqual(parseCaption(c.prompt), c.scene);
      assert.equal(isHeldOut(c.scene), c.split === "heldOut", c.prompt);
    }
  });

  it("spreads prompts evenly over colours, shapes, directions and backgrounds", () => {
    const seen = buildSuite({ prompts: 24, seeds: 1 }).filter((c) => c.split === "seen");
    assert.ok(spread(seen.map((c) => c.scene.colour)) <= 1);
    assert.ok(spread(seen.map((c) => c.scene.shape)) <= 1);
    assert.ok(spread(seen.map((c) => c.scene.direction)) <= 1);
    assert.ok(spread(seen.map((c) => c.scene.background)) <= 1);
    const heldOut = buildSuite({ prompts: 8, seeds: 1 }).filter((c) => c.split === "heldOut");
    // the eight held-out triples, one each
    assert.equal(
      new Set(heldOut.map((c) => `${c.scene.colour} ${c.scene.shape} ${c.scene.direction}`)).size,
      8,
    );
  });

  it("is the same suite every time, and a prefix of a larger one per split", () => {
    assert.deepEqual(buildSuite({ prompts: 6, seeds: 2 }), buildSuite({ prompts: 6, seeds: 2 }));
    const small = buildSuite({ prompts: 4, seeds: 1 }).filter((c) => c.split === "seen");
    const large = buildSuite({ prompts: 10, seeds: 1 }).filter((c) => c.split === "seen");
    assert.deepEqual(small, large.slice(0, 4));
  });

  it("stops at the number of distinct scenes a split has", () => {
    const suite = buildSuite({ prompts: 1000, seeds: 1 });
    assert.equal(suite.filter((c) => c.split === "heldOut").length, maxPromptsPerSplit.heldOut);
    assert.equal(maxPromptsPerSplit.heldOut, 24);
    assert.equal(suite.filter((c) => c.split === "seen").length, maxPromptsPerSplit.seen);
    assert.equal(maxPromptsPerSplit.seen, 264);
  });

  it("rejects counts that are not positive integers", () => {
    assert.throws(() => buildSuite({ prompts: 0, seeds: 1 }), /prompts must be a positive integer, got 0/);
    assert.throws(() => buildSuite({ prompts: 2, seeds: 1.5 }), /seeds must be a positive integer/);
  });
});
