import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { planScaling, type ScalingInput } from "./autoscaler.ts";

const base: ScalingInput = {
  classes: ["h100", "rtx5090"],
  noCapacity: new Set(),
  minWorkers: 0,
  maxWorkers: 4,
  jobsPerWorker: 1,
  scaleDownDelayMs: 60_000,
  jobs: [],
  workers: [],
  nowMs: 1_000_000,
};
const queued = (classes = ["h100", "rtx5090"]) => ({ classes });

describe("planScaling", () => {
  it("scales up at once to queue depth over jobsPerWorker, capped at maxWorkers", () => {
    const plan = planScaling({ ...base, jobs: Array.from({ length: 10 }, () => queued()), jobsPerWorker: 2 });
    assert.deepEqual(plan.create, [{ gpuClass: "h100", count: 4 }]);
    assert.equal(plan.depth, 10);
  });

  it("puts each job's demand on its first usable preferred class", () => {
    const plan = planScaling({ ...base, jobs: [queued(["rtx5090"]), queued(), queued(["rtx5090", "h100"])] });
    assert.equal(plan.desired.get("h100"), 1);
    assert.equal(plan.desired.get("rtx5090"), 2);
  });

  it("falls back to the next class when the preferred one has no capacity", () => {
    const plan = planScaling({ ...base, noCapacity: new Set(["h100"]), jobs: [queued(), queued()] });
    assert.equal(plan.desired.get("h100"), 0);
    assert.deepEqual(plan.create, [{ gpuClass: "rtx5090", count: 2 }]);
  });

  it("removes pending workers of a class without capacity at once", () => {
    const plan = planScaling({
      ...base,
      noCapacity: new Set(["h100"]),
      jobs: [queued()],
      workers: [{ name: "p1", gpuClass: "h100", state: "pending" }],
    });
    assert.deepEqual(plan.remove, ["p1"]);
    assert.deepEqual(plan.create, [{ gpuClass: "rtx5090", count: 1 }]);
  });

  it("keeps minWorkers on the first class with an empty queue", () => {
    const plan = planScaling({ ...base, minWorkers: 1 });
    assert.deepEqual(plan.create, [{ gpuClass: "h100", count: 1 }]);
  });

  it("removes idle workers only after scaleDownDelay and never a busy one", () => {
    const workers = [
      { name: "busy", gpuClass: "h100", state: "busy" as const },
      { name: "fresh", gpuClass: "h100", state: "ready" as const, idleSinceMs: base.nowMs - 10_000 },
      { name: "stale", gpuClass: "h100", state: "ready" as const, idleSinceMs: base.nowMs - 61_000 },
    ];
    const plan = planScaling({ ...base, workers, jobs: [{ classes: ["h100"], runningOn: "h100" }] });
    assert.deepEqual(plan.remove, ["stale"]);
    assert.equal(plan.desired.get("h100"), 1);
  });

  it("keeps busy workers even above maxWorkers", () => {
    const workers = Array.from({ length: 3 }, (_, i) => ({
      name: `w${i}`,
      gpuClass: "h100",
      state: "busy" as const,
    }));
    const plan = planScaling({
      ...base,
      maxWorkers: 1,
      workers,
      jobs: workers.map(() => ({ classes: ["h100"], runningOn: "h100" })),
    });
    assert.deepEqual(plan.remove, []);
    assert.equal(plan.desired.get("h100"), 3);
  });

  it("counts jobs no allowed class can serve", () => {
    const plan = planScaling({ ...base, jobs: [queued(["cpu"])] });
    assert.equal(plan.unservable, 1);
    assert.deepEqual(plan.create, []);
  });

  it("never lets the workers that exist exceed maxWorkers, reclaiming idle ones of another class", () => {
    const workers = [
      { name: "h1", gpuClass: "h100", state: "busy" as const },
      { name: "h2", gpuClass: "h100", state: "busy" as const },
      { name: "h3", gpuClass: "h100", state: "ready" as const, idleSinceMs: base.nowMs - 1_000 },
      { name: "h4", gpuClass: "h100", state: "ready" as const, idleSinceMs: base.nowMs - 2_000 },
    ];
    const jobs = [
      { classes: ["h100"], runningOn: "h100" },
      { classes: ["h100"], runningOn: "h100" },
      { classes: ["rtx5090"] },
      { classes: ["rtx5090"] },
    ];
    const plan = planScaling({ ...base, workers, jobs });
    assert.deepEqual(plan.remove.sort(), ["h3", "h4"]);
    assert.deepEqual(plan.create, [{ gpuClass: "rtx5090", count: 2 }]);
  });

  it("creates no more than the room under maxWorkers", () => {
    const workers = [
      { name: "h1", gpuClass: "h100", state: "busy" as const },
      { name: "h2", gpuClass: "h100", state: "busy" as const },
      { name: "h3", gpuClass: "h100", state: "busy" as const },
    ];
    const jobs = [
      ...workers.map(() => ({ classes: ["h100"], runningOn: "h100" })),
      { classes: ["rtx5090"] },
      { classes: ["rtx5090"] },
    ];
    const plan = planScaling({ ...base, workers, jobs });
    assert.deepEqual(plan.create, [{ gpuClass: "rtx5090", count: 1 }]);
  });
});
