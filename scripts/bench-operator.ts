// `npm run bench:operator -- [--jobs 1000] [--workers 8] [--json] [--dir CLUSTER_DIR]`: the control-plane load
// benchmark. Jobs go to workers that skip the denoiser (`--engine synthetic`), so what is
// measured is the operator, the workers' status traffic and the API server: dispatch latency
// (p50, p99, from framefleet_dispatch_latency_seconds), jobs per second, API writes per job
// (operator and workers, from framefleet_api_requests_total), and the operator's memory.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { podPort } from "../src/operator/podtemplate.ts";
import { up } from "../test/cluster/control-plane.ts";
import {
  apply,
  e2eModelSource,
  installOperator,
  kubectl,
  REPO,
  testEnv,
  waitFor,
} from "../test/e2e/harness.ts";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "1000" },
    workers: { type: "string", default: "8" },
    json: { type: "boolean", default: false },
    dir: { type: "string" },
  },
});
const total = Number(values.jobs);
const maxWorkers = Number(values.workers);
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

const state = await up({ dir: values.dir, nodes: "h100=2,rtx5090=2,cpu=1", log });
const namespace = `bench-${Date.now().toString(36)}`;
const env = testEnv(state.kubeconfig, namespace);
kubectl(env, ["apply", "--server-side", "-f", join(REPO, "crds")]);
kubectl(env, ["wait", "--for=condition=Established", "crd/videogenerationjobs.framefleet.dev"]);
kubectl(env, ["create", "namespace", namespace]);
const work = join(REPO, ".framefleet", namespace);
mkdirSync(work, { recursive: true });
const operator = installOperator(env, {
  replicas: 1,
  args: ["--worker-arg=--engine=synthetic"],
  config: { autoscaler: { enabled: true, noCapacityFallbackSeconds: 60 } },
});
apply(env, [
  {
    apiVersion: "framefleet.dev/v1alpha1",
    kind: "AcceleratedModel",
    metadata: { name: "load", namespace },
    spec: {
      // The synthetic engine only needs the model's config and vocabulary.
      source: e2eModelSource(work, "synthetic").source,
      gpuClasses: ["cpu"],
      workers: { resources: { requests: { cpu: "10m", memory: "64Mi" } } },
      scaling: { minWorkers: maxWorkers, maxWorkers, jobsPerWorker: 1, scaleDownDelaySeconds: 600 },
      output: { emptyDir: {} },
    },
  },
]);
const metricsUrl = `http://127.0.0.1:${operator.metricsPort(operator.replicas[0] as string)}/metrics`;
const scrape = async (url: string) => (await fetch(url)).text();
await waitFor("the operator's metrics", async () => (await scrape(metricsUrl)).length > 0, 60_000, 500);
await waitFor(
  `${maxWorkers} ready workers`,
  async () => {
    const m = await env.kinds.models.get(namespace, "load");
    return (m.status?.readyWorkers ?? 0) >= maxWorkers;
  },
  180_000,
  1000,
);
const before = await scrape(metricsUrl);
log(`${maxWorkers} workers ready; creating ${total} jobs`);
const started = Date.now();
let next = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      await env.kinds.jobs.create(namespace, {
        apiVersion: "framefleet.dev/v1alpha1",
        kind: "VideoGenerationJob",
        metadata: { name: `load-${i}`, namespace },
        spec: {
          model: "load",
          prompt: "a red circle moving right on a black background",
          seed: i,
          video: { width: 16, height: 16, frames: 1, fps: 8 },
          output: { format: "png-frames" },
        } as never,
      });
    }
  }),
);
const created = Date.now();
log(`created ${total} jobs in ${((created - started) / 1000).toFixed(1)} s`);
let peakRss = 0;
const done = await waitFor(
  "every job to finish",
  async () => {
    const rss = metric(await scrape(metricsUrl), "framefleet_process_process_resident_memory_bytes");
    peakRss = Math.max(peakRss, rss);
    const list = (await env.kinds.jobs.list(namespace)).items;
    const finished = list.filter((j) => ["Succeeded", "Failed"].includes(j.status?.phase ?? ""));
    return finished.length === total ? list : undefined;
  },
  1_800_000,
  1000,
);
const finishedAt = Math.max(...done.map((j) => Date.parse(j.status?.completionTime ?? "") || 0));
const failed = done.filter((j) => j.status?.phase !== "Succeeded").length;
const after = await scrape(metricsUrl);
const pods = (await env.kinds.pods.list(namespace, { labelSelector: "app.kubernetes.io/component=worker" }))
  .items;
let workerWrites = 0;
for (const p of pods) {
  const text = await scrape(`http://127.0.0.1:${podPort(p)}/metrics`).catch(() => "");
  workerWrites += writes(text);
}
const operatorWrites = writes(after) - writes(before);
const operatorRequests =
  metric(after, "framefleet_api_requests_total") - metric(before, "framefleet_api_requests_total");
const latency = histogram(after, before, "framefleet_dispatch_latency_seconds");
const result = {
  jobs: total,
  workers: maxWorkers,
  failed,
  seconds: (finishedAt - started) / 1000,
  jobsPerSecond: total / ((finishedAt - started) / 1000),
  dispatchLatencyP50Ms: quantile(latency, 0.5) * 1000,
  dispatchLatencyP99Ms: quantile(latency, 0.99) * 1000,
  apiWritesPerJob: (operatorWrites + workerWrites) / total,
  operatorWritesPerJob: operatorWrites / total,
  workerWritesPerJob: workerWrites / total,
  operatorRequestsPerJob: operatorRequests / total,
  operatorPeakRssMiB: peakRss / 2 ** 20,
  operatorWritesByRequest: breakdown(after, before),
};
process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
kubectl(env, ["delete", "namespace", namespace, "--wait=false"]);
env.client.close();

/** Sum of a metric over all its label sets. */
function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(" ").pop());
  }
  return sum;
}

/** API writes (everything but get, list and watch) in a /metrics exposition. */
function writes(text: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith("framefleet_api_requests_total{")) continue;
    if (/verb="(get|watch|list)"/.test(line)) continue;
    sum += Number(line.split(" ").pop());
  }
  return sum;
}

/** Operator writes per job by verb, resource and response code, between two scrapes. */
function breakdown(after: string, before: string): Record<string, number> {
  const read = (text: string) => {
    const out = new Map<string, number>();
    for (const line of text.split("\n")) {
      const m = /^framefleet_api_requests_total\{(.*)\} (\S+)$/.exec(line);
      if (!m || /verb="(get|watch|list)"/.test(m[1] as string)) continue;
      out.set(m[1] as string, Number(m[2]));
    }
    return out;
  };
  const b = read(before);
  const out: Record<string, number> = {};
  for (const [labels, n] of read(after)) {
    const d = n - (b.get(labels) ?? 0);
    if (d > 0) out[labels.replace(/"/g, "")] = Math.round((d / total) * 1000) / 1000;
  }
  return out;
}

/** Cumulative bucket counts (le -> count) of a histogram, as the difference of two scrapes. */
function histogram(after: string, before: string, name: string): Array<[number, number]> {
  const read = (text: string) => {
    const out = new Map<number, number>();
    for (const line of text.split("\n")) {
      const m = new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\} (\\S+)$`).exec(line);
      if (!m) continue;
      const le = m[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[1]);
      out.set(le, (out.get(le) ?? 0) + Number(m[2]));
    }
    return out;
  };
  const a = read(after);
  const b = read(before);
  return [...a].map(([le, n]) => [le, n - (b.get(le) ?? 0)] as [number, number]).sort((x, y) => x[0] - y[0]);
}

/** A quantile from cumulative buckets, interpolating linearly inside the bucket (as PromQL does). */
function quantile(buckets: Array<[number, number]>, q: number): number {
  const count = buckets.at(-1)?.[1] ?? 0;
  if (count === 0) return Number.NaN;
  const rank = q * count;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, n] of buckets) {
    if (n >= rank) {
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, n - prevCount);
    }
    prevLe = le;
    prevCount = n;
  }
  return prevLe;
}
