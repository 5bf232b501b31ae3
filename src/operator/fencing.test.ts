import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assignOps, escapePointer, expiryFenceOps, fenceOps, setStatusOps } from "./fencing.ts";

describe("fenced status patches", () => {
  it("tests the worker and attempt before any worker write", () => {
    assert.deepEqual(fenceOps({ worker: "m-cpu-abc", attempt: 3 }), [
      { op: "test", path: "/status/assignment/worker", value: "m-cpu-abc" },
      { op: "test", path: "/status/assignment/attempt", value: 3 },
    ]);
  });

  it("fences a lease-expiry requeue on the renewal it was judged on, when there is one", () => {
    assert.deepEqual(expiryFenceOps({ worker: "w", attempt: 2, renewTime: "2026-01-01T00:00:04Z" }), [
      ...fenceOps({ worker: "w", attempt: 2 }),
      { op: "test", path: "/status/assignment/renewTime", value: "2026-01-01T00:00:04Z" },
    ]);
    assert.deepEqual(expiryFenceOps({ worker: "w", attempt: 2 }), fenceOps({ worker: "w", attempt: 2 }));
  });

  it("makes an assignment conditional on the phase and the attempt count it was computed from", () => {
    const ops = assignOps(2, { worker: "w", attempt: 3 }, { phase: "Running" }, { queuePosition: 4 });
    assert.deepEqual(ops.slice(0, 2), [
      { op: "test", path: "/status/phase", value: "Queued" },
      { op: "test", path: "/status/attempts", value: 2 },
    ]);
    assert.deepEqual(
      ops.slice(2).map((o) => o.path),
      ["/status/phase", "/status/attempts", "/status/assignment"],
    );
  });

  it("removes only fields that exist, since removing a missing path fails the whole patch", () => {
    const ops = setStatusOps(
      { queuePosition: undefined, assignment: undefined, phase: "Queued" },
      { assignment: { worker: "w" } },
    );
    assert.deepEqual(ops, [
      { op: "remove", path: "/status/assignment" },
      { op: "add", path: "/status/phase", value: "Queued" },
    ]);
  });

  it("escapes JSON Pointer segments", () => {
    assert.equal(escapePointer("a/b~c"), "a~1b~0c");
  });
});
