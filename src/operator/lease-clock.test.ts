import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LeaseClock, leaseMsOf } from "./lease-clock.ts";

describe("worker lease expiry by the operator's clock", () => {
  it("counts a full lease from when a renewal is first seen, whatever time the worker wrote", () => {
    const clock = new LeaseClock();
    // The worker's clock runs a minute behind: its renewTime alone would say long expired.
    const a = { attempt: 1, renewTime: "2026-01-01T00:00:00Z" };
    assert.equal(clock.expiresAt("ns/j", a, 10_000, 1_000_000), 1_010_000);
    assert.equal(
      clock.expiresAt("ns/j", a, 10_000, 1_009_000),
      1_010_000,
      "the same renewal keeps its deadline",
    );
  });

  it("restarts the lease on each new renewal and each new attempt", () => {
    const clock = new LeaseClock();
    clock.expiresAt("ns/j", { attempt: 1, renewTime: "t1" }, 10_000, 0);
    assert.equal(clock.expiresAt("ns/j", { attempt: 1, renewTime: "t2" }, 10_000, 4_000), 14_000);
    assert.equal(clock.expiresAt("ns/j", { attempt: 2, renewTime: "t2" }, 10_000, 6_000), 16_000);
  });

  it("forgets finished jobs", () => {
    const clock = new LeaseClock();
    assert.equal(clock.expiresAt("ns/j", { attempt: 1, renewTime: "t" }, 30_000, 0), 30_000);
    clock.forget("ns/j");
    assert.equal(clock.expiresAt("ns/j", { attempt: 1, renewTime: "t" }, 30_000, 5_000), 35_000);
  });

  it("takes the attempt's own lease, else the operator's default", () => {
    assert.equal(leaseMsOf({ leaseSeconds: 10 }, 30), 10_000);
    assert.equal(leaseMsOf({}, 30), 30_000);
  });
});
