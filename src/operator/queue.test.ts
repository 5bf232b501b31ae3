import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JobObject } from "./kinds.ts";
import { allowedClasses, compareQueued, isDispatchable, queuePositions, retryNotBefore } from "./queue.ts";

function job(
  name: string,
  priority: number,
  created: string,
  status: JobObject["status"] = { phase: "Queued", attempts: 0 },
): JobObject {
  return {
    apiVersion: "framefleet.dev/v1alpha1",
    kind: "VideoGenerationJob",
    metadata: { name, namespace: "ns", creationTimestamp: created },
    spec: {
      model: "m",
      prompt: "a red circle",
      priority,
      video: { width: 128, height: 128, frames: 33, fps: 16 },
      profile: "turbo",
      backoffLimit: 3,
      suspend: false,
      output: { format: "mp4" },
    },
    status,
  } as JobObject;
}

describe("job queue", () => {
  it("orders by priority, then age, then name", () => {
    const jobs = [
      job("c", 0, "2026-01-01T00:00:02Z"),
      job("a", 5, "2026-01-01T00:00:03Z"),
      job("b", 0, "2026-01-01T00:00:01Z"),
    ];
    assert.deepEqual(
      jobs.sort(compareQueued).map((j) => j.metadata.name),
      ["a", "b", "c"],
    );
    assert.deepEqual(
      [...queuePositions(jobs)],
      [
        ["ns/a", 1],
        ["ns/b", 2],
        ["ns/c", 3],
      ],
    );
  });

  it("holds a job requeued after a lost worker for an exponential backoff", () => {
    const lost = (attempts: number) =>
      job("j", 0, "2026-01-01T00:00:00Z", {
        phase: "Queued",
        attempts,
        conditions: [
          {
            type: "Running",
            status: "False",
            reason: "WorkerLost",
            message: "",
            lastTransitionTime: "2026-01-01T00:01:00Z",
            observedGeneration: 1,
          },
        ],
      });
    const t0 = Date.parse("2026-01-01T00:01:00Z");
    const policy = { baseMs: 1000, maxMs: 5000 };
    assert.equal(retryNotBefore(lost(1), policy), t0 + 1000);
    assert.equal(retryNotBefore(lost(3), policy), t0 + 4000);
    assert.equal(retryNotBefore(lost(9), policy), t0 + 5000);
    assert.equal(isDispatchable(lost(1), t0 + 999, policy), false);
    assert.equal(isDispatchable(lost(1), t0 + 1000, policy), true);
  });

  it("does not delay a job a worker handed back on shutdown", () => {
    const handed = job("j", 0, "2026-01-01T00:00:00Z", {
      phase: "Queued",
      attempts: 1,
      conditions: [
        {
          type: "Running",
          status: "False",
          reason: "Requeued",
          message: "",
          lastTransitionTime: "2026-01-01T00:01:00Z",
          observedGeneration: 1,
        },
      ],
    });
    assert.equal(retryNotBefore(handed, { baseMs: 1000, maxMs: 5000 }), 0);
  });

  it("keeps suspended and deleted jobs out of dispatch", () => {
    const s = job("s", 0, "2026-01-01T00:00:00Z");
    s.spec.suspend = true;
    const d = job("d", 0, "2026-01-01T00:00:00Z");
    d.metadata.deletionTimestamp = "2026-01-01T00:00:00Z";
    assert.equal(isDispatchable(s, Date.now(), { baseMs: 1, maxMs: 1 }), false);
    assert.equal(isDispatchable(d, Date.now(), { baseMs: 1, maxMs: 1 }), false);
  });

  it("restricts a job's class preference to the model's classes, in the job's order", () => {
    const j = job("j", 0, "2026-01-01T00:00:00Z");
    assert.deepEqual(allowedClasses(j, ["h100", "cpu"]), ["h100", "cpu"]);
    j.spec.gpuClasses = ["rtx5090", "cpu", "h100"];
    assert.deepEqual(allowedClasses(j, ["h100", "cpu"]), ["cpu", "h100"]);
  });
});
