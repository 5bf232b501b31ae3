// `npm run demo`: the whole flow on the local control plane. Starts the cluster (h100, rtx5090
// and cpu process nodes), installs the CRDs and the operator, applies the example model and jobs
// with kubectl, shows them progress with the printer columns, and prints where the videos are.
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { up } from "../test/cluster/control-plane.ts";
import { apply, e2eModelSource, installOperator, kubectl, REPO, testEnv } from "../test/e2e/harness.ts";

const namespace = process.env.DEMO_NAMESPACE ?? "framefleet-demo";
const log = (line: string) => process.stdout.write(`demo: ${line}\n`);

// FRAMEFLEET_CLUSTER_DIR picks a cluster other than the default .framefleet/cluster.
const state = await up({ dir: process.env.FRAMEFLEET_CLUSTER_DIR, nodes: "h100=2,rtx5090=2,cpu=1", log });
const env = testEnv(state.kubeconfig, namespace);
const run = (args: string[], input?: string) => {
  const r = kubectl(env, args, input);
  if (!r.ok && !/AlreadyExists/.test(r.err)) throw new Error(`kubectl ${args.join(" ")}: ${r.err}`);
  return r.out;
};
log(`cluster up at ${state.server}; kubeconfig ${state.kubeconfig}`);
run(["apply", "--server-side", "-f", join(REPO, "crds")]);
run([
  "wait",
  "--for=condition=Established",
  "crd/videogenerationjobs.framefleet.dev",
  "crd/acceleratedmodels.framefleet.dev",
]);
run(["create", "namespace", namespace]);

const work = join(REPO, ".framefleet", "demo");
mkdirSync(work, { recursive: true });
const { source, engine } = e2eModelSource(work);
if (engine === "synthetic") {
  log("the bundled model or the native engine is not built: workers run the synthetic engine (no denoiser)");
}
installOperator(env, {
  replicas: 2,
  args:
    engine === "synthetic" ? ["--worker-arg=--engine=synthetic", "--worker-arg=--synthetic-step-ms=300"] : [],
});
log(`operator installed in ${namespace} (two replicas, one leader)`);

const examples = join(REPO, "manifests", "examples");
const docs = readdirSync(examples)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .flatMap((f) => parseAllDocuments(readFileSync(join(examples, f), "utf8")).map((d) => d.toJS()))
  .filter((d) => d && typeof d === "object");
const models = docs.filter((d) => d.kind === "AcceleratedModel");
const jobs = docs.filter((d) => d.kind === "VideoGenerationJob");
for (const m of models) {
  m.metadata.namespace = namespace;
  if (engine === "synthetic") {
    m.spec.source = source;
    m.spec.gpuClasses = ["h100", "rtx5090", "cpu"];
  }
}
apply(env, models);
log(`applied ${models.length} model(s); applying ${jobs.length} job(s) with kubectl`);
for (const j of jobs) {
  j.metadata.namespace = namespace;
  if (engine === "synthetic") j.spec.video = { width: 32, height: 32, frames: 9, fps: 8 };
}
apply(env, jobs);

const finished = new Set(["Succeeded", "Failed", "Cancelled"]);
for (;;) {
  await new Promise((r) => setTimeout(r, 2000));
  process.stdout.write(`\n${run(["get", "vgj", "-n", namespace])}`);
  process.stdout.write(run(["get", "am", "-n", namespace]));
  const phases = JSON.parse(run(["get", "vgj", "-n", namespace, "-o", "json"])) as {
    items: Array<{
      metadata: { name: string };
      spec: { suspend?: boolean };
      status?: { phase?: string; output?: { uri?: string } };
    }>;
  };
  const open = phases.items.filter((j) => !finished.has(j.status?.phase ?? "") && !j.spec.suspend);
  if (open.length === 0) {
    log(
      'all jobs finished (suspended ones wait for `kubectl patch vgj NAME --type=merge -p \'{"spec":{"suspend":false}}\'`)',
    );
    for (const j of phases.items) {
      if (j.status?.output?.uri) log(`${j.metadata.name}: ${j.status.output.uri}`);
    }
    break;
  }
}
log(
  `explore with: test/cluster/bin/framefleet-cluster kubectl --kubeconfig ${state.kubeconfig} -n ${namespace} describe vgj`,
);
log("stop the cluster with: npm run cluster -- down");
