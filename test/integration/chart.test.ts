// The Helm chart: lint and render over a matrix of values files, with assertions on what each
// renders; unknown values keys are rejected; the dashboard queries only metrics the code exports.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { INSTALL_FILE, renderInstall } from "../../scripts/render-install.ts";
import { OperatorConfigSchema } from "../../src/api/index.ts";
import { registry } from "../../src/telemetry/index.ts";
import { clusterBinary, repoRoot, run } from "../support/cluster.ts";

const chart = join(repoRoot, "charts", "framefleet");
const ciDir = join(chart, "ci");

type Doc = {
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
} & Record<string, unknown>;

async function helm(args: string[]) {
  return run(clusterBinary, ["helm", ...args], { timeoutMs: 120_000 });
}

async function render(valuesFile: string, extra: string[] = []): Promise<Doc[]> {
  const result = await helm([
    "template",
    "ff",
    chart,
    "--namespace",
    "video",
    "-f",
    join(ciDir, valuesFile),
    ...extra,
  ]);
  assert.equal(result.code, 0, `helm template -f ${valuesFile} failed:\n${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
}

const byKind = (docs: Doc[], kind: string) => docs.filter((d) => d.kind === kind);
const one = (docs: Doc[], kind: string): Doc => {
  const found = byKind(docs, kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0] as Doc;
};

function operatorConfig(docs: Doc[]) {
  const cm = byKind(docs, "ConfigMap").find((c) => c.metadata.name.endsWith("-config"));
  assert.ok(cm, "the operator's ConfigMap is rendered");
  const text = (cm.data as Record<string, string>)["config.yaml"] ?? "";
  return OperatorConfigSchema.parse(parseYaml(text));
}

function operatorDeployment(docs: Doc[]) {
  const dep = one(docs, "Deployment") as Doc & {
    spec: {
      replicas: number;
      template: { spec: { containers: Record<string, unknown>[] } & Record<string, unknown> };
    };
  };
  return dep;
}

describe("Helm chart", () => {
  const valuesFiles = readdirSync(ciDir).filter((f) => f.endsWith(".yaml"));

  it("has a values file for each install flavour", () => {
    assert.deepEqual(valuesFiles.sort(), [
      "default-values.yaml",
      "gpu-only-values.yaml",
      "ha-values.yaml",
      "keda-values.yaml",
      "minimal-values.yaml",
    ]);
  });

  for (const file of valuesFiles) {
    it(`passes helm lint and renders a restricted, wildcard-free install with ${file}`, async () => {
      const lint = await helm(["lint", chart, "-f", join(ciDir, file)]);
      assert.equal(lint.code, 0, `helm lint -f ${file}:\n${lint.stdout}${lint.stderr}`);
      const docs = await render(file);
      const pod = operatorDeployment(docs).spec.template.spec;
      const container = pod.containers[0] as { securityContext: Record<string, unknown>; args: string[] };
      assert.deepEqual(container.securityContext, {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
      });
      assert.equal((pod.securityContext as { runAsNonRoot: boolean }).runAsNonRoot, true);
      assert.deepEqual(container.args, ["operator"]);
      for (const role of [...byKind(docs, "ClusterRole"), ...byKind(docs, "Role")]) {
        for (const rule of role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
          for (const v of [...rule.apiGroups, ...rule.resources, ...rule.verbs]) {
            assert.notEqual(v, "*", `${role.kind} ${role.metadata.name} uses a wildcard`);
          }
        }
      }
      operatorConfig(docs);
    });
  }

  it("default: two replicas with leader election, a PDB, and CRDs kept on uninstall", async () => {
    const docs = await render("default-values.yaml");
    assert.equal(operatorDeployment(docs).spec.replicas, 2);
    assert.equal(one(docs, "PodDisruptionBudget").kind, "PodDisruptionBudget");
    const crds = byKind(docs, "CustomResourceDefinition");
    assert.deepEqual(crds.map((c) => c.metadata.name).sort(), [
      "acceleratedmodels.framefleet.dev",
      "videogenerationjobs.framefleet.dev",
    ]);
    for (const crd of crds) assert.equal(crd.metadata.annotations?.["helm.sh/resource-policy"], "keep");
    const config = operatorConfig(docs);
    assert.equal(config.leaderElection.enabled, true);
    assert.equal(config.leaderElection.leaseName, "ff-framefleet-leader");
    assert.deepEqual(Object.keys(config.gpuClasses).sort(), ["cpu", "h100", "rtx5090"]);
    const workerSa = byKind(docs, "ServiceAccount").filter((s) => s.metadata.name === "framefleet-worker");
    assert.deepEqual(
      workerSa.map((s) => s.metadata.namespace),
      ["video"],
    );
  });

  it("minimal: one replica, no election, no PDB, no CRDs", async () => {
    const docs = await render("minimal-values.yaml");
    assert.equal(operatorDeployment(docs).spec.replicas, 1);
    assert.equal(byKind(docs, "PodDisruptionBudget").length, 0);
    assert.equal(byKind(docs, "CustomResourceDefinition").length, 0);
    assert.equal(operatorConfig(docs).leaderElection.enabled, false);
  });

  it("HA: monitoring objects and worker RBAC in every listed namespace", async () => {
    const docs = await render("ha-values.yaml");
    assert.equal(operatorDeployment(docs).spec.replicas, 3);
    one(docs, "ServiceMonitor");
    one(docs, "PrometheusRule");
    assert.ok(byKind(docs, "ConfigMap").some((c) => c.metadata.name.endsWith("-dashboard")));
    const workerRoles = byKind(docs, "Role").filter((r) => r.metadata.name === "framefleet-worker");
    assert.deepEqual(workerRoles.map((r) => r.metadata.namespace).sort(), ["video-prod", "video-staging"]);
  });

  it("GPU-only: the cpu class is gone from the operator's configuration", async () => {
    const config = operatorConfig(await render("gpu-only-values.yaml"));
    assert.deepEqual(Object.keys(config.gpuClasses).sort(), ["h100", "rtx5090"]);
  });

  it("KEDA: a ScaledObject on the model's scale subresource, and the built-in autoscaler off", async () => {
    const docs = await render("keda-values.yaml");
    const so = one(docs, "ScaledObject") as Doc & {
      spec: { scaleTargetRef: Record<string, string>; triggers: { metadata: { query: string } }[] };
    };
    assert.deepEqual(so.spec.scaleTargetRef, {
      apiVersion: "framefleet.dev/v1alpha1",
      kind: "AcceleratedModel",
      name: "tiny-shapes",
    });
    assert.match(so.spec.triggers[0]?.metadata.query ?? "", /framefleet_queue_depth/);
    assert.equal(operatorConfig(docs).autoscaler.enabled, false);
  });

  it("rejects unknown values keys and KEDA beside the built-in autoscaler", async () => {
    const unknown = await helm(["template", "ff", chart, "--set", "operator.replica=3"]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /additional properties 'replica' not allowed/);
    const both = await helm(["template", "ff", chart, "--set", "keda.enabled=true"]);
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /keda.enabled needs autoscaler.enabled: false/);
  });

  it("keeps manifests/install equal to the chart's default render (npm run manifests)", () => {
    assert.equal(
      readFileSync(INSTALL_FILE, "utf8"),
      renderInstall(),
      "manifests/install is stale: run npm run manifests",
    );
  });

  it("ships a valid dashboard that queries only metrics the code exports", async () => {
    const dashboard = JSON.parse(readFileSync(join(chart, "dashboards", "framefleet.json"), "utf8")) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    assert.ok(dashboard.panels.length >= 5);
    const exported = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    const queried = new Set<string>();
    for (const panel of dashboard.panels) {
      assert.ok(panel.targets.length > 0, `${panel.title} has a query`);
      for (const target of panel.targets) {
        for (const m of target.expr.matchAll(/framefleet_[a-z_]+/g))
          queried.add(m[0].replace(/_(bucket|sum|count)$/, ""));
      }
    }
    for (const name of queried)
      assert.ok(exported.has(name), `the dashboard queries ${name}, which no code exports`);
    for (const needed of [
      "framefleet_queue_depth",
      "framefleet_workers",
      "framefleet_dispatch_latency_seconds",
    ]) {
      assert.ok(queried.has(needed), `the dashboard shows ${needed}`);
    }
  });
});
