// Install like a user: `helm install` of charts/framefleet (CRDs included) into the real control plane, in a
// namespace that enforces the restricted Pod Security Standard, then `helm test` (which submits a
// job and waits for its video) and `helm uninstall`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { apply, CLUSTER_BIN, clusterNamespace, kubectl, POD_DIRS, REPO, type TestEnv } from "./harness.ts";

const CRDS = ["crd/acceleratedmodels.framefleet.dev", "crd/videogenerationjobs.framefleet.dev"];

/** The test pod's log, as the process kubelet keeps it: pods/<ns>_<pod>_<uid>/logs/smoke.log. */
function smokeLog(namespace: string, pod: string): string {
  const match = readdirSync(POD_DIRS).find((d) => d.startsWith(`${namespace}_${pod}_`));
  assert.ok(match, `the log folder of ${pod}`);
  return readFileSync(join(POD_DIRS, match, "logs", "smoke.log"), "utf8");
}

function helm(env: TestEnv, args: string[], timeoutMs = 240_000) {
  const r = spawnSync(
    CLUSTER_BIN,
    ["helm", "--kubeconfig", env.kubeconfig, "--namespace", env.namespace, ...args],
    {
      encoding: "utf8",
      timeout: timeoutMs,
    },
  );
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

describe("helm install into the local control plane", () => {
  let env: TestEnv;
  let cleanup: () => Promise<void>;
  const release = "ff";

  before(async () => {
    ({ env, cleanup } = await clusterNamespace(import.meta.url));
    const label = kubectl(env, [
      "label",
      "namespace",
      env.namespace,
      "pod-security.kubernetes.io/enforce=restricted",
    ]);
    assert.ok(label.ok, label.err);
  });
  after(async () => {
    helm(env, ["uninstall", release, "--wait"]);
    await cleanup();
  });

  it("installs, runs a job through `helm test`, and uninstalls, with every pod admitted as restricted", async () => {
    // The test run installed the CRDs already: mark them as this release's so Helm adopts them,
    // which also lets the test check that uninstalling keeps them (crds.keep, the default).
    for (const crd of CRDS) {
      const own = kubectl(env, [
        "annotate",
        "--overwrite",
        crd,
        `meta.helm.sh/release-name=${release}`,
        `meta.helm.sh/release-namespace=${env.namespace}`,
      ]);
      assert.ok(own.ok, own.err);
      const managed = kubectl(env, ["label", "--overwrite", crd, "app.kubernetes.io/managed-by=Helm"]);
      assert.ok(managed.ok, managed.err);
    }
    // 32000-32759: apart from the harness' operator ports and below the ephemeral range (32768 up).
    const port = 32000 + Math.floor(Math.random() * 380) * 2;
    const install = helm(env, [
      "install",
      release,
      join(REPO, "charts/framefleet"),
      "--set",
      "operator.replicas=1",
      "--set",
      `operator.watchNamespaces={${env.namespace}}`,
      "--set",
      `metrics.port=${port}`,
      "--set",
      `metrics.healthPort=${port + 1}`,
      "--set",
      "workers.image.repository=framefleet/worker-cpu",
      // Take the adopted CRDs' fields over from the test run's field manager.
      "--force-conflicts",
      "--wait",
      "--timeout=180s",
    ]);
    assert.ok(install.ok, `helm install failed:\n${install.out}`);
    assert.match(
      install.out,
      /Next, create a model and a job/,
      "NOTES.txt tells the user what to apply next",
    );

    apply(env, [
      {
        apiVersion: "framefleet.dev/v1alpha1",
        kind: "AcceleratedModel",
        metadata: { name: "tiny-shapes", namespace: env.namespace },
        spec: {
          source: { builtin: "tiny-shapes" },
          gpuClasses: ["cpu"],
          scaling: { minWorkers: 0, maxWorkers: 1, scaleDownDelaySeconds: 5 },
        },
      },
    ]);

    const test = helm(env, ["test", release, "--timeout=240s"], 300_000);
    assert.ok(test.ok, `helm test failed:\n${test.out}`);
    assert.match(test.out, /Phase:\s+Succeeded/);
    const log = smokeLog(env.namespace, `${release}-framefleet-test`);
    assert.match(log, /: Succeeded/, `the smoke job succeeded:\n${log}`);
    assert.match(
      log,
      /^output: \{.*"uri":"file:\/\/[^"]+\.mp4"/m,
      `the smoke job recorded its video:\n${log}`,
    );

    const events = kubectl(env, ["get", "events", "-n", env.namespace, "-o", "json"]);
    assert.ok(events.ok, events.err);
    assert.doesNotMatch(
      events.out,
      /violates PodSecurity/,
      "no framefleet pod was refused by the restricted profile",
    );

    const uninstall = helm(env, ["uninstall", release, "--wait", "--timeout=120s"]);
    assert.ok(uninstall.ok, uninstall.out);
    for (const crd of CRDS) {
      const kept = kubectl(env, [
        "get",
        crd,
        "-o",
        "jsonpath={.metadata.annotations.helm\\.sh/resource-policy}",
      ]);
      assert.ok(kept.ok, `${crd} outlives the release: ${kept.err}`);
      assert.equal(kept.out, "keep");
    }
  });
});
