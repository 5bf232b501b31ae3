// Bad input at every layer ends in a clear reason in status and in events, the operator neither
// crashes nor spins while bad objects sit there, and the worker identity has least privilege.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { ApiError, KubeClient } from "../../src/kube/index.ts";
import { TEST_CONFIG, TEST_WORDS } from "../../src/pipeline/test-support.ts";
import {
  apply,
  clusterNamespace,
  installOperator,
  kubectl,
  type OperatorInstall,
  type TestEnv,
  waitFor,
  writeModelDir,
} from "./harness.ts";

describe("operator on bad input", { timeout: 300_000 }, () => {
  let env: TestEnv;
  let cleanup: () => Promise<void>;
  let work: string;
  let operator: OperatorInstall;

  const model = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: "framefleet.dev/v1alpha1",
    kind: "AcceleratedModel",
    metadata: { name, namespace: env.namespace },
    spec: { gpuClasses: ["cpu"], output: { emptyDir: {} }, ...spec },
  });
  const job = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: "framefleet.dev/v1alpha1",
    kind: "VideoGenerationJob",
    metadata: { name, namespace: env.namespace },
    spec: { model: "shapes", prompt: "a red circle moving right on a black background", ...spec },
  });

  before(async () => {
    ({ env, cleanup } = await clusterNamespace(import.meta.url));
    work = mkdtempSync(join(tmpdir(), "framefleet-e2e-"));
    const vocab = ["<pad>", "<bos>", ...TEST_WORDS];
    const good = writeModelDir(join(work, "good"), TEST_CONFIG, vocab);
    const broken = writeModelDir(join(work, "broken"), TEST_CONFIG, vocab);
    truncateSync(join(broken, "dit.safetensors"), 100);
    operator = installOperator(env, { replicas: 1, args: ["--worker-arg=--engine=synthetic"] });
    apply(env, [
      model("shapes", { source: { hostPath: good } }),
      model("broken", { source: { hostPath: broken } }),
      model("nowhere", { source: { hostPath: good }, gpuClasses: ["tpu"] }),
      job("ghost-model", { model: "ghost" }),
      job("too-wide", { video: { width: 256, height: 32, frames: 9, fps: 8 } }),
      job("unknown-class", { gpuClasses: ["h100"] }),
      job("unknown-words", { prompt: "a purple unicorn moving right" }),
      job("too-many-steps", { profile: "turbo", sampling: { steps: 16 } }),
      job("on-broken", { model: "broken" }),
    ]);
  });

  after(async () => {
    await cleanup?.();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const cases: Array<
    [kind: "models" | "jobs", name: string, phase: string, reason: string, message: RegExp]
  > = [
    ["models", "broken", "Failed", "ArtifactCorrupt", /dit\.safetensors.*(exceeds|truncated|spans)/],
    ["models", "nowhere", "Failed", "UnknownGpuClass", /tpu not configured/],
    ["jobs", "ghost-model", "Pending", "ModelNotFound", /ghost does not exist/],
    ["jobs", "too-wide", "Failed", "DoesNotFit", /width.*between 16 and 128.*got 256/],
    ["jobs", "unknown-class", "Failed", "UnknownGpuClass", /h100 not among the model's classes/],
    ["jobs", "unknown-words", "Failed", "UnknownWords", /word 'unicorn' not in the vocabulary/],
    [
      "jobs",
      "too-many-steps",
      "Failed",
      "InvalidSpec",
      /spec\.sampling\.steps: the rcm sampler runs 1 to 4 steps \(got 16\)/,
    ],
    ["jobs", "on-broken", "Pending", "ModelNotReady", /not usable/],
  ];

  for (const [kind, name, phase, reason, message] of cases) {
    it(`reports ${kind}/${name} as ${phase} with reason ${reason}, in status and in an event`, async () => {
      const obj = await waitFor(`${name} to be ${phase}`, async () => {
        const o = await env.kinds[kind].get(env.namespace, name);
        return o.status?.phase === phase ? o : undefined;
      });
      const conditions = (obj.status?.conditions ?? []) as Array<{ reason: string; message: string }>;
      const c = conditions.find((x) => x.reason === reason);
      assert.ok(c, `a condition with reason ${reason}: ${JSON.stringify(conditions)}`);
      assert.match(c.message, message);
      await waitFor(`a ${reason} event on ${name}`, async () => {
        const events = await env.client.request<{
          items: Array<{ reason: string; involvedObject: { name: string } }>;
        }>("GET", `/api/v1/namespaces/${env.namespace}/events`);
        return events.items.some((e) => e.reason === reason && e.involvedObject.name === name);
      });
    });
  }

  it("stays up and quiet while the bad objects sit there", async () => {
    const port = operator.metricsPort(operator.replicas[0] as string);
    const requests = async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      let total = 0;
      for (const line of text.split("\n")) {
        if (line.startsWith("framefleet_api_requests_total{") && !line.includes('resource="leases"')) {
          total += Number(line.split(" ").pop());
        }
      }
      return total;
    };
    const before = await requests();
    await new Promise((r) => setTimeout(r, 10_000));
    const rate = ((await requests()) - before) / 10;
    assert.ok(rate <= 0.5, `the operator makes ${rate} API requests/s besides its lease while idle`);
    const pods = await env.kinds.pods.list(env.namespace, {
      labelSelector: "app.kubernetes.io/component=operator",
    });
    for (const p of pods.items) {
      assert.equal(
        p.status?.containerStatuses?.[0]?.restartCount ?? 0,
        0,
        `${p.metadata.name} never restarted`,
      );
    }
  });

  it("grants the worker identity only its namespace's jobs, their status and events", async () => {
    const as = `--as=system:serviceaccount:${env.namespace}:framefleet-worker`;
    const can = (...args: string[]) => kubectl(env, ["auth", "can-i", as, ...args]).out.trim();
    assert.equal(can("watch", "videogenerationjobs.framefleet.dev", "-n", env.namespace), "yes");
    assert.equal(
      can("patch", "videogenerationjobs.framefleet.dev", "--subresource=status", "-n", env.namespace),
      "yes",
    );
    assert.equal(can("create", "events", "-n", env.namespace), "yes");
    assert.equal(can("patch", "videogenerationjobs.framefleet.dev", "-n", env.namespace), "no");
    assert.equal(can("delete", "videogenerationjobs.framefleet.dev", "-n", env.namespace), "no");
    assert.equal(can("get", "secrets", "-n", env.namespace), "no");
    assert.equal(can("list", "videogenerationjobs.framefleet.dev", "-n", "default"), "no");
    assert.equal(can("create", "pods", "-n", env.namespace), "no");
    // And for real, with the worker's own token.
    const token = kubectl(env, ["create", "token", "framefleet-worker", "-n", env.namespace]).out.trim();
    assert.ok(token.length > 20, "a token for the worker identity");
    const cluster = env.client.config.getCurrentCluster();
    assert.ok(cluster);
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser(cluster, { name: "worker", token });
    const worker = new KubeClient(kc);
    try {
      const forbidden = async (p: Promise<unknown>) =>
        assert.rejects(p, (err: unknown) => err instanceof ApiError && err.code === 403);
      await forbidden(worker.request("GET", `/api/v1/namespaces/${env.namespace}/secrets`));
      await forbidden(
        worker.request("GET", "/apis/framefleet.dev/v1alpha1/namespaces/default/videogenerationjobs"),
      );
      await forbidden(worker.request("GET", `/api/v1/namespaces/${env.namespace}/pods`));
      await worker.request(
        "GET",
        `/apis/framefleet.dev/v1alpha1/namespaces/${env.namespace}/videogenerationjobs`,
      );
    } finally {
      worker.close();
    }
  });
});
