// The operator on the real control plane: a model and 20 jobs of mixed priority and GPU-class
// preference, workers killed with SIGKILL mid-job, a worker frozen past its lease, and the
// leader killed mid-run.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { PodObject } from "../../src/operator/kinds.ts";
import {
  apply,
  clusterNamespace,
  e2eModelSource,
  installOperator,
  installOutputClaim,
  kubectl,
  listFiles,
  namespaceReport,
  podPids,
  type TestEnv,
  waitFor,
} from "./harness.ts";

const PRODUCT: Record<string, string> = {
  h100: "NVIDIA-H100-80GB-HBM3",
  rtx5090: "NVIDIA-GeForce-RTX-5090",
};
const CLASS_ORDERS = [["h100", "rtx5090"], ["rtx5090"], ["rtx5090", "h100"], ["h100"]];

describe("operator end to end", { timeout: 600_000 }, () => {
  let env: TestEnv;
  let cleanup: () => Promise<void>;
  let work: string;
  let outputs: string;
  const seenPods = new Map<string, PodObject>();
  let poll: NodeJS.Timeout | undefined;

  const envNs = () => env.namespace;
  const jobs = async () => (await env.kinds.jobs.list(env.namespace)).items;
  const job = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: "framefleet.dev/v1alpha1",
    kind: "VideoGenerationJob",
    metadata: { name, namespace: env.namespace },
    spec: {
      model: "shapes",
      prompt: "a red circle moving right on a black background",
      video: { width: 32, height: 32, frames: 9, fps: 8 },
      output: { format: "png-frames" },
      ...spec,
    },
  });

  /** Waits until the job is generating, then sends its worker's processes `signal`; returns their pids. */
  const signalWorkerOf = async (name: string, signal: NodeJS.Signals): Promise<number[]> => {
    const running = await waitFor(
      `${name} to be generating`,
      async () => {
        const j = await env.kinds.jobs.get(env.namespace, name);
        return j.status?.phase === "Running" && (j.status.progress?.percent ?? 0) > 0 ? j : undefined;
      },
      120_000,
      100,
    );
    const worker = running.status?.assignment?.worker as string;
    const pids = podPids(worker);
    assert.ok(pids.length > 0, `found the process of ${worker}`);
    for (const pid of pids) process.kill(pid, signal);
    return pids;
  };

  before(async () => {
    ({ env, cleanup } = await clusterNamespace(import.meta.url));
    work = mkdtempSync(join(tmpdir(), "framefleet-e2e-"));
    outputs = join(work, "outputs");
    installOutputClaim(env, "videos", outputs);
    const { source } = e2eModelSource(work);
    // "slow" runs the synthetic engine at 400 ms a step, so kills and failovers land mid-job.
    const slow = e2eModelSource(join(work, "slow"), "synthetic").source;
    installOperator(env, { replicas: 2 });
    const model = (
      name: string,
      src: Record<string, unknown>,
      env: Array<{ name: string; value: string }> = [],
    ) => ({
      apiVersion: "framefleet.dev/v1alpha1",
      kind: "AcceleratedModel",
      metadata: { name, namespace: envNs() },
      spec: {
        source: src,
        gpuClasses: ["h100", "rtx5090"],
        workers: { env },
        scaling: { minWorkers: 0, maxWorkers: 4, jobsPerWorker: 1, scaleDownDelaySeconds: 5 },
        output: { pvc: { claimName: "videos" } },
      },
    });
    apply(env, [
      model("shapes", source),
      model("slow", slow, [
        { name: "FRAMEFLEET_WORKER_ENGINE", value: "synthetic" },
        { name: "FRAMEFLEET_SYNTHETIC_STEP_MS", value: "400" },
      ]),
    ]);
    for (const name of ["shapes", "slow"]) {
      await waitFor(`model ${name} to be validated`, async () => {
        const m = await env.kinds.models.get(env.namespace, name);
        return m.status?.conditions?.find((c) => c.type === "Validated" && c.status === "True");
      });
    }
    // Remember every worker pod with its node, for placement checks.
    poll = setInterval(async () => {
      try {
        for (const p of (
          await env.kinds.pods.list(env.namespace, { labelSelector: "app.kubernetes.io/component=worker" })
        ).items) {
          if (p.spec?.nodeName) seenPods.set(p.metadata.name as string, p);
        }
      } catch {
        // the API server may be restarting
      }
    }, 500);
  });

  after(async () => {
    clearInterval(poll);
    await cleanup?.();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("runs 20 jobs of mixed priority and class preference to Succeeded, scaling 0 -> 4 -> 0", async () => {
    apply(
      env,
      Array.from({ length: 20 }, (_, i) =>
        job(`mixed-${i}`, {
          priority: (i * 7) % 3,
          seed: i,
          gpuClasses: CLASS_ORDERS[i % CLASS_ORDERS.length],
        }),
      ),
    );
    let maxWorkers = 0;
    let sawPosition = false;
    const done = await waitFor(
      "20 jobs to succeed",
      async () => {
        const list = (await jobs()).filter((j) => j.metadata.name?.startsWith("mixed-"));
        const pods = (
          await env.kinds.pods.list(env.namespace, { labelSelector: "framefleet.dev/model=shapes" })
        ).items;
        maxWorkers = Math.max(maxWorkers, pods.filter((p) => !p.metadata.deletionTimestamp).length);
        sawPosition ||= list.some((j) => (j.status?.queuePosition ?? 0) > 1);
        const failed = list.find((j) => j.status?.phase === "Failed");
        if (failed) throw new Error(`job ${failed.metadata.name} failed: ${failed.status?.message}`);
        return list.length === 20 && list.every((j) => j.status?.phase === "Succeeded") ? list : undefined;
      },
      300_000,
      300,
    );
    assert.ok(sawPosition, "queue positions were visible");
    assert.equal(maxWorkers, 4, `the pool scaled up to maxWorkers (saw at most ${maxWorkers})`);
    for (const j of done) {
      const uri = j.status?.output?.uri ?? "";
      assert.ok(uri.startsWith("file://"), uri);
      const path = uri.slice("file://".length);
      const files = existsSync(path) ? readdirSync(path).sort() : [];
      assert.equal(files.length, 9, `${j.metadata.name}: 9 frames at ${path}`);
      const worker = seenPods.get(j.status?.assignment?.worker ?? "");
      const cls = j.status?.assignment?.gpuClass ?? "";
      assert.ok(j.spec.gpuClasses?.includes(cls), `${j.metadata.name} ran on an allowed class (${cls})`);
      assert.ok(worker, `worker ${j.status?.assignment?.worker} was seen`);
    }
    for (const p of seenPods.values()) {
      const cls = p.metadata.labels?.["framefleet.dev/gpu-class"] ?? "";
      const node = await env.client.request<{ metadata: { labels: Record<string, string> } }>(
        "GET",
        `/api/v1/nodes/${p.spec?.nodeName}`,
      );
      assert.equal(
        node.metadata.labels["nvidia.com/gpu.product"],
        PRODUCT[cls],
        `${p.metadata.name} on a ${cls} node`,
      );
    }
    assertNoPartials(outputs);
    await waitFor(
      "the pool to scale back to zero",
      async () =>
        (await env.kinds.pods.list(env.namespace, { labelSelector: "framefleet.dev/model=shapes" })).items
          .length === 0,
      60_000,
      500,
    );
  });

  it("requeues a job whose worker is killed with SIGKILL, five times, completing each exactly once", async () => {
    const names = Array.from({ length: 5 }, (_, i) => `killed-${i}`);
    apply(
      env,
      names.map((n, i) =>
        job(n, { model: "slow", seed: 100 + i, sampling: { steps: 4 }, gpuClasses: ["h100", "rtx5090"] }),
      ),
    );
    const killed = new Set<string>();
    for (const name of names) {
      await signalWorkerOf(name, "SIGKILL");
      killed.add(name);
    }
    const finished = await waitFor(
      "the killed jobs to succeed",
      async () => {
        const list = (await jobs()).filter((j) => killed.has(j.metadata.name ?? ""));
        return list.every((j) => j.status?.phase === "Succeeded") ? list : undefined;
      },
      240_000,
      500,
    );
    for (const j of finished) {
      assert.ok(
        (j.status?.attempts ?? 0) >= 2,
        `${j.metadata.name} was requeued (attempts ${j.status?.attempts})`,
      );
      const path = (j.status?.output?.uri ?? "").slice("file://".length);
      assert.equal(readdirSync(path).length, 9);
    }
    const outputsOf = listFiles(outputs).filter(
      (f) => /killed-\d/.test(f) && !f.endsWith(".json") && !f.includes("preview"),
    );
    const dirs = new Set(outputsOf.map((f) => f.split("/").slice(0, -1).join("/")));
    assert.equal(dirs.size, 5, `one output per killed job: ${[...dirs].join(", ")}`);
    assertNoPartials(outputs);
  });

  it("requeues the job of a worker frozen with SIGSTOP once its lease lapses, and refuses its late writes", async () => {
    apply(env, [job("frozen", { model: "slow", seed: 300, profile: "baseline", sampling: { steps: 16 } })]);
    const pids = await signalWorkerOf("frozen", "SIGSTOP");
    const frozenAt = Date.now();
    try {
      await waitFor(
        "the frozen attempt to be requeued",
        async () => ((await env.kinds.jobs.get(env.namespace, "frozen")).status?.attempts ?? 0) >= 2,
        60_000,
        200,
      );
      // The worker lease is 10 s (testConfig); the operator times it from the last renewal it saw.
      assert.ok(Date.now() - frozenAt >= 9_000, `requeued ${Date.now() - frozenAt} ms after the freeze`);
    } finally {
      for (const pid of pids) process.kill(pid, "SIGCONT");
    }
    const done = await waitFor(
      "frozen to succeed",
      async () => {
        const j = await env.kinds.jobs.get(env.namespace, "frozen");
        return j.status?.phase === "Succeeded" ? j : undefined;
      },
      120_000,
      500,
    );
    assert.equal(done.status?.attempts, 2);
    const expired = JSON.parse(
      kubectl(env, [
        "get",
        "events",
        "-n",
        env.namespace,
        "-o",
        "json",
        "--field-selector",
        "involvedObject.name=frozen",
      ]).out,
    ).items.filter((e: { reason?: string }) => e.reason === "LeaseExpired");
    assert.ok(expired.length >= 1, "a LeaseExpired event names the lapse");
    // The thawed worker's next write fails its fence; it drops the attempt and its partial files.
    await waitFor(
      "the thawed worker to drop its partial files",
      () => (listFiles(outputs).some((f) => f.includes(".partial")) ? undefined : true),
      30_000,
      250,
    );
    const later = await env.kinds.jobs.get(env.namespace, "frozen");
    assert.equal(later.status?.phase, "Succeeded");
    assert.equal(later.status?.output?.sha256, done.status?.output?.sha256, "the result stands");
    const dirs = new Set(
      listFiles(outputs)
        .filter((f) => /(^|\/)frozen(\/|-)/.test(f) && !f.endsWith(".json") && !f.includes("preview"))
        .map((f) => f.split("/").slice(0, -1).join("/")),
    );
    assert.equal(dirs.size, 1, `one output for the frozen job: ${[...dirs].join(", ")}`);
  });

  it("hands leadership to the standby within 20 s, losing no job and assigning none twice", async () => {
    const lease = await env.kinds.leases.get(env.namespace, "framefleet-operator");
    const leader = lease.spec?.holderIdentity as string;
    const names = Array.from({ length: 6 }, (_, i) => `failover-${i}`);
    apply(
      env,
      names.map((n, i) => job(n, { model: "slow", seed: 200 + i, sampling: { steps: 4 } })),
    );
    await waitFor("a failover job to run", async () =>
      (await jobs()).some((j) => j.metadata.name?.startsWith("failover-") && j.status?.phase === "Running"),
    );
    const killedAt = Date.now();
    // Identities are <pod>_<suffix>.
    for (const pid of podPids(leader.replace(/_[^_]*$/, ""))) process.kill(pid, "SIGKILL");
    const next = await waitFor(
      "a new leader",
      async () => {
        const l = await env.kinds.leases.get(env.namespace, "framefleet-operator");
        return l.spec?.holderIdentity && l.spec.holderIdentity !== leader ? l.spec.holderIdentity : undefined;
      },
      30_000,
      200,
    );
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs < 20_000, `the standby ${next} leads after ${tookMs} ms`);
    const list = await waitFor(
      "the failover jobs to succeed",
      async () => {
        const l = (await jobs()).filter((j) => j.metadata.name?.startsWith("failover-"));
        return l.every((j) => j.status?.phase === "Succeeded") ? l : undefined;
      },
      180_000,
      500,
    );
    for (const j of list)
      assert.equal(
        j.status?.attempts,
        1,
        `${j.metadata.name} was assigned once: ${JSON.stringify(j.status?.conditions)}\n${namespaceReport(env)}`,
      );
  });
});

function assertNoPartials(dir: string): void {
  const partial = listFiles(dir).filter((f) => f.includes(".partial"));
  assert.deepEqual(partial, [], "no partial file is left behind");
}
