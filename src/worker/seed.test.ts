import assert from "node:assert/strict";
import { it } from "node:test";
import { seedFromUid } from "./worker.ts";

it("derives a stable 32-bit seed from a job's UID, different between jobs", () => {
  const a = seedFromUid("0b7a8a1e-5a55-4c1b-9a8e-1f6f3b1d2c01");
  assert.equal(a, seedFromUid("0b7a8a1e-5a55-4c1b-9a8e-1f6f3b1d2c01"));
  assert.notEqual(a, seedFromUid("0b7a8a1e-5a55-4c1b-9a8e-1f6f3b1d2c02"));
  assert.ok(Number.isInteger(a) && a >= 0 && a <= 0xffffffff);
});
