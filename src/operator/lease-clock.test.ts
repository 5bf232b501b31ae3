import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LeaseClock } from "./lease-clock.ts";

describe("worker lease expiry by the operator's clock", () => {
  it("counts a full lease from when a renewal is first seen, whatever time the worker wrote", () => {
    const clock = new LeaseClock();
    // The worker's clock runs a minute behind: its renewTime alone would say long expired.
    const a = { attempt: 1, renewTime: "2026-01-01T00:00:00Z", leaseSeconds: 10 };
    assert.equal(clock.expiresAt("ns/j", a, 30, 1_000_000), 1_010_000);
    assert.equal(clock.expiresAt("ns/j", a, 30, 1_009_000), 1_010_000, "the same renewal keeps its deadline");
  });

  it("restarts the lease on each new renewal and each new attempt", () => {
    const clock = new LeaseClock();
    clock.expiresAt("ns/j", { attempt: 1, renewTime: "t1", leaseSeconds: 10 }, 30, 0);
    assert.equal(
      clock.expiresAt("ns/j", { attempt: 1, renewTime: "t2", leaseSeconds: 10 }, 30, 4_000),
      14_000,
    );
    assert.equal(
      clock.expiresAt("ns/j", { attempt: 2, renewTime: "t2", leaseSeconds: 10 }, 30, 6_000),
      16_000,
    );
  });

  it("uses the default lease when the assignment names none, and forgets finished jobs", () => {
    const clock = new LeaseClock();
    assert.equal(clock.expiresAt("ns/j", { attempt: 1, renewTime: "t" }, 30, 0), 30_000);
    clock.forget("ns/j");
    assert.equal(clock.expiresAt("ns/j", { attempt: 1, renewTime: "t" }, 30, 5_000), 35_000);
  });
});
