// Fencing against the real API server: the JSON Patch `test` ops the dispatcher and workers use
// make a second assignment of one attempt, any write by a worker that lost its attempt, and a
// lease-expiry requeue judged on a renewal the worker has since replaced, fail.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { isTestFailed } from "../../src/kube/index.ts";
import { assignOps, expiryFenceOps, fenceOps, setStatusOps } from "../../src/operator/fencing.ts";
import { apply, clusterNamespace, type TestEnv } from "../e2e/harness.ts";

describe("fenced job status writes", { timeout: 120_000 }, () => {
  let env: TestEnv;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ env, cleanup } = await clusterNamespace(import.meta.url));
  });
  after(async () => cleanup?.());

  async function queuedJob(name: string) {
    apply(env, [
      {
        apiVersion: "framefleet.dev/v1alpha1",
        kind: "VideoGenerationJob",
        metadata: { name, namespace: env.namespace },
        spec: { model: "m", prompt: "a red circle" },
      },
    ]);
    await env.kinds.jobs.mergePatch(
      env.namespace,
      name,
      { status: { phase: "Queued", attempts: 0 } },
      { subresource: "status" },
    );
  }

  const assign = (name: string, worker: string, previous: number) =>
    env.kinds.jobs.jsonPatch(
      env.namespace,
      name,
      assignOps(previous, { worker, attempt: previous + 1 }, { phase: "Running" }, {}),
      { subresource: "status" },
    );

  it("lets only one of two leaders assign the same attempt", async () => {
    await queuedJob("race");
    const results = await Promise.allSettled([assign("race", "worker-a", 0), assign("race", "worker-b", 0)]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    assert.equal(won.length, 1, "exactly one assignment lands");
    assert.ok(
      lost.every((r) => isTestFailed((r as PromiseRejectedResult).reason)),
      "the other fails its test op",
    );
    const job = await env.kinds.jobs.get(env.namespace, "race");
    assert.equal(job.status?.attempts, 1);
  });

  it("refuses a stale worker's writes once its attempt was reassigned", async () => {
    await queuedJob("stale");
    await assign("stale", "worker-a", 0);
    const write = (worker: string, attempt: number, message: string) =>
      env.kinds.jobs.jsonPatch(
        env.namespace,
        "stale",
        [...fenceOps({ worker, attempt }), ...setStatusOps({ message })],
        {
          subresource: "status",
        },
      );
    await write("worker-a", 1, "progress from a");
    // The attempt is revoked and requeued, then attempt 2 goes to worker-b.
    await env.kinds.jobs.jsonPatch(
      env.namespace,
      "stale",
      [...fenceOps({ worker: "worker-a", attempt: 1 }), ...setStatusOps({ phase: "Queued" })],
      {
        subresource: "status",
      },
    );
    await assign("stale", "worker-b", 1);
    await assert.rejects(write("worker-a", 1, "late success from a"), isTestFailed);
    await write("worker-b", 2, "progress from b");
    const job = await env.kinds.jobs.get(env.namespace, "stale");
    assert.equal(job.status?.message, "progress from b");
    assert.equal(job.status?.assignment?.worker, "worker-b");
  });
  it("refuses a lease-expiry requeue judged on a renewal the worker has since replaced", async () => {
    await queuedJob("renewed");
    await assign("renewed", "worker-a", 0);
    const renew = (renewTime: string) =>
      env.kinds.jobs.jsonPatch(
        env.namespace,
        "renewed",
        [
          ...fenceOps({ worker: "worker-a", attempt: 1 }),
          { op: "add", path: "/status/assignment/renewTime", value: renewTime },
        ],
        { subresource: "status" },
      );
    await renew("2026-01-01T00:00:00Z");
    const seen = (await env.kinds.jobs.get(env.namespace, "renewed")).status?.assignment;
    assert.ok(seen);
    // The worker renews after the operator read the job, before its requeue lands.
    await renew("2026-01-01T00:00:04Z");
    const requeue = (a: typeof seen) =>
      env.kinds.jobs.jsonPatch(
        env.namespace,
        "renewed",
        [...expiryFenceOps(a), ...setStatusOps({ phase: "Queued" })],
        { subresource: "status" },
      );
    await assert.rejects(requeue(seen), isTestFailed);
    let job = await env.kinds.jobs.get(env.namespace, "renewed");
    assert.equal(job.status?.phase, "Running", "the live attempt keeps running");
    // Judged on the renewal that is current, the requeue lands.
    await requeue(job.status?.assignment ?? seen);
    job = await env.kinds.jobs.get(env.namespace, "renewed");
    assert.equal(job.status?.phase, "Queued");
  });
});
