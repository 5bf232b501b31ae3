// What the operator's end-to-end tests share: installing the operator (as Deployments whose pods
// the process kubelet runs from this checkout) and the worker's RBAC into a test namespace, a
// small model directory for hostPath sources, kubectl, and polling helpers.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import type { OperatorConfig } from "../../src/api/index.ts";
import { KubeClient } from "../../src/kube/index.ts";
import { kinds, type PodObject } from "../../src/operator/kinds.ts";
import { TEST_CONFIG, TEST_WORDS } from "../../src/pipeline/test-support.ts";

export const REPO = resolve(import.meta.dirname, "../..");
export const CLUSTER_BIN = join(REPO, "test/cluster/bin/framefleet-cluster");

export interface TestEnv {
  kubeconfig: string;
  namespace: string;
  client: KubeClient;
  kinds: ReturnType<typeof kinds>;
}

export function testEnv(kubeconfig: string, namespace: string): TestEnv {
  const client = KubeClient.fromDefault(kubeconfig);
  return { kubeconfig, namespace, client, kinds: kinds(client) };
}

export function kubectl(
  env: Pick<TestEnv, "kubeconfig">,
  args: string[],
  input?: string,
): { ok: boolean; out: string; err: string } {
  const r = spawnSync(CLUSTER_BIN, ["kubectl", "--kubeconfig", env.kubeconfig, ...args], {
    input,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { ok: r.status === 0, out: r.stdout ?? "", err: r.stderr ?? "" };
}

/** `kubectl apply -f -` of objects; throws with kubectl's message on failure. */
export function apply(env: Pick<TestEnv, "kubeconfig">, objects: object[]): void {
  const r = kubectl(
    env,
    ["apply", "--server-side", "--field-manager=e2e", "-f", "-"],
    objects.map((o) => `---\n${stringify(o)}`).join(""),
  );
  if (!r.ok) throw new Error(`kubectl apply failed: ${r.err || r.out}`);
}

/** The namespace of this test file (one per file: see clusterNamespace), described when a wait times out. */
let reportedEnv: TestEnv | undefined;

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      const report = reportedEnv ? `\n${namespaceReport(reportedEnv)}` : "";
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${lastErr}` : ""}${report}`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Where the process kubelet keeps each pod's folder: pods/<ns>_<pod>_<uid>/logs/<container>.log. */
export const POD_DIRS = join(
  process.env.FRAMEFLEET_CLUSTER_DIR ?? join(REPO, ".framefleet/test-cluster"),
  "pods",
);

/**
 * What a namespace looks like, for a failure's message: each pod with its node, phase and
 * container states, the last lines of every container's log, and the namespace's latest events.
 */
export function namespaceReport(env: TestEnv, logLines = 20): string {
  const out: string[] = [`--- namespace ${env.namespace} ---`];
  const pods = kubectl(env, ["get", "pods", "-n", env.namespace, "-o", "json"]);
  let items: PodObject[] = [];
  try {
    items = (JSON.parse(pods.out) as { items: PodObject[] }).items;
  } catch {
    out.push(`pods: ${pods.err.trim() || "unreadable"}`);
  }
  let dirs: string[] = [];
  try {
    dirs = readdirSync(POD_DIRS);
  } catch {
    // no pod has run yet
  }
  for (const p of items) {
    const name = p.metadata.name as string;
    const states = (p.status?.containerStatuses ?? []).map(
      (c) => `${c.name} ready=${c.ready} restarts=${c.restartCount} ${JSON.stringify(c.state)}`,
    );
    out.push(`pod ${name} node=${p.spec?.nodeName ?? "-"} phase=${p.status?.phase} ${states.join("; ")}`);
    const dir = dirs.find((d) => d.startsWith(`${env.namespace}_${name}_`));
    if (!dir) continue;
    for (const log of readdirSync(join(POD_DIRS, dir, "logs"))) {
      const lines = readFileSync(join(POD_DIRS, dir, "logs", log), "utf8")
        .trimEnd()
        .split("\n");
      out.push(`  ${log} (last ${Math.min(logLines, lines.length)} lines):`);
      for (const l of lines.slice(-logLines)) out.push(`    ${l}`);
    }
  }
  const events = kubectl(env, ["get", "events", "-n", env.namespace, "--sort-by=.lastTimestamp"]);
  out.push("events:", ...events.out.trimEnd().split("\n").slice(-30));
  return out.join("\n");
}

/** Operator configuration for tests: one namespace, fast fallbacks, short worker leases. */
export function testConfig(
  namespace: string,
  overrides: Partial<OperatorConfig> = {},
): Record<string, unknown> {
  return {
    watchNamespaces: [namespace],
    workerImage: "framefleet/worker-cpu:latest",
    leaderElection: {
      enabled: true,
      leaseName: "framefleet-operator",
      namespace,
      leaseDurationSeconds: 15,
      renewDeadlineSeconds: 10,
      retryPeriodSeconds: 2,
    },
    autoscaler: { enabled: true, noCapacityFallbackSeconds: 5 },
    workerLeaseSeconds: 10,
    ...overrides,
  };
}

const OPERATOR_RULES = [
  {
    apiGroups: ["framefleet.dev"],
    resources: ["acceleratedmodels", "videogenerationjobs"],
    verbs: ["get", "list", "watch", "update", "patch", "delete"],
  },
  {
    apiGroups: ["framefleet.dev"],
    resources: ["acceleratedmodels/status", "videogenerationjobs/status"],
    verbs: ["get", "update", "patch"],
  },
  {
    apiGroups: ["framefleet.dev"],
    resources: ["acceleratedmodels/finalizers", "videogenerationjobs/finalizers"],
    verbs: ["update"],
  },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch", "create", "delete", "patch"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
  {
    apiGroups: ["coordination.k8s.io"],
    resources: ["leases"],
    verbs: ["get", "list", "watch", "create", "update", "patch"],
  },
];

/** The worker's rules, as the Helm chart's rbac-worker.yaml grants them. */
export const WORKER_RULES = [
  {
    apiGroups: ["framefleet.dev"],
    resources: ["videogenerationjobs", "acceleratedmodels"],
    verbs: ["get", "list", "watch"],
  },
  { apiGroups: ["framefleet.dev"], resources: ["videogenerationjobs/status"], verbs: ["get", "patch"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
];

function identity(ns: string, name: string, rules: object[]): object[] {
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: ns } },
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name, namespace: ns }, rules },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name, namespace: ns },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name, namespace: ns }],
    },
  ];
}

export interface OperatorInstall {
  /** Replicas as separate one-pod Deployments (each needs its own ports on a shared host). */
  replicas: string[];
  metricsPort: (replica: string) => number;
}

/**
 * The operator as it runs in a cluster, scoped to the test namespace: Role-based RBAC (no
 * wildcards), the worker identity, and one Deployment per replica with its own ports.
 */
export function installOperator(
  env: TestEnv,
  opts: { replicas?: number; basePort?: number; config?: Partial<OperatorConfig>; args?: string[] } = {},
): OperatorInstall {
  const ns = env.namespace;
  const n = opts.replicas ?? 2;
  // 30000-31999: above the worker pods' ports (WORKER_PORTS) and below Linux's ephemeral range
  // (32768 up), where the local port of some outgoing connection on the host may already hold it.
  const base = opts.basePort ?? 30000 + Math.floor(Math.random() * 500) * 4;
  const replicas = Array.from({ length: n }, (_, i) => `framefleet-operator-${String.fromCharCode(97 + i)}`);
  const objects: object[] = [
    ...identity(ns, "framefleet-operator", OPERATOR_RULES),
    ...identity(ns, "framefleet-worker", WORKER_RULES),
  ];
  replicas.forEach((name, i) => {
    const config = testConfig(ns, {
      ...opts.config,
      metricsPort: base + 2 * i,
      healthPort: base + 2 * i + 1,
    } as Partial<OperatorConfig>);
    const labels = {
      "app.kubernetes.io/name": "framefleet",
      "app.kubernetes.io/component": "operator",
      replica: name,
    };
    objects.push({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: ns },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: "framefleet-operator",
            terminationGracePeriodSeconds: 5,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [
              {
                name: "operator",
                image: "framefleet/operator:latest",
                args: ["operator", "--retry-backoff-seconds", "1", ...(opts.args ?? [])],
                env: [
                  { name: "FRAMEFLEET_CONFIG", value: stringify(config) },
                  { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                  { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                  { name: "LOG_LEVEL", value: "info" },
                ],
                ports: [
                  { name: "metrics", containerPort: base + 2 * i },
                  { name: "health", containerPort: base + 2 * i + 1 },
                ],
                readinessProbe: {
                  httpGet: { path: "/readyz", port: base + 2 * i + 1 },
                  periodSeconds: 2,
                  failureThreshold: 15,
                },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ["ALL"] },
                },
              },
            ],
          },
        },
      },
    });
  });
  apply(env, objects);
  return { replicas, metricsPort: (r) => base + 2 * replicas.indexOf(r) };
}

/** A PersistentVolume + claim for outputs; the process kubelet maps the claim to one local folder. */
export function installOutputClaim(env: TestEnv, claim: string, hostDir: string): object[] {
  mkdirSync(hostDir, { recursive: true });
  const pv = `${env.namespace}-${claim}`;
  const objects = [
    {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: pv },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteMany"],
        persistentVolumeReclaimPolicy: "Retain",
        storageClassName: "",
        hostPath: { path: hostDir },
        claimRef: { namespace: env.namespace, name: claim },
      },
    },
    {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: claim, namespace: env.namespace },
      spec: {
        accessModes: ["ReadWriteMany"],
        storageClassName: "",
        volumeName: pv,
        resources: { requests: { storage: "1Gi" } },
      },
    },
  ];
  apply(env, objects);
  return objects;
}

/** A minimal valid safetensors file holding one F32 tensor of `count` values. */
export function safetensors(name: string, count: number): Buffer {
  const header = Buffer.from(
    JSON.stringify({ [name]: { dtype: "F32", shape: [count], data_offsets: [0, count * 4] } }),
  );
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, Buffer.alloc(count * 4)]);
}

/**
 * A model directory the synthetic engine can serve: the bundled model's config and vocabulary
 * when present (else the pipeline's test config), with small but well-formed weight files.
 */
export function writeModelDir(dir: string, config: object, vocab: string[]): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, "vocab.txt"), `${vocab.join("\n")}\n`);
  for (const f of ["text_encoder", "dit", "student", "vae_decoder"])
    writeFileSync(join(dir, `${f}.safetensors`), safetensors(`${f}.w`, 64));
  return dir;
}

export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Every file under `dir`, recursively, as paths relative to it. */
export function listFiles(dir: string, prefix = ""): string[] {
  let entries: string[];
  try {
    entries = readdirSync(join(dir, prefix));
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const rel = prefix ? `${prefix}/${e}` : e;
    return statSync(join(dir, rel)).isDirectory() ? listFiles(dir, rel) : [rel];
  });
}

/** Processes whose environment names POD_NAME=<pod> (the process kubelet runs pods as processes). */
export function podPids(pod: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, "utf8").split("\0");
      if (environ.includes(`POD_NAME=${pod}`)) pids.push(Number(entry));
    } catch {
      // exited, or not ours to read
    }
  }
  return pids;
}

/** Reads a counter's total over all label sets from a Prometheus text exposition. */
export function counterTotal(text: string, name: string): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.split(" ").pop());
  }
  return total;
}

/**
 * The shared test cluster (started once per test run by scripts/run-tests.mjs) with this test
 * file's own namespace, the CRDs applied, and a cleanup that deletes the namespace.
 */
export async function clusterNamespace(
  fileUrl: string,
): Promise<{ env: TestEnv; cleanup: () => Promise<void> }> {
  const { useTestCluster } = await import("../support/cluster.ts");
  const cluster = await useTestCluster(fileUrl);
  const env = testEnv(cluster.kubeconfig, cluster.namespace);
  reportedEnv = env;
  // The first test file of a run installs the CRDs; later ones find them established.
  const crdNames = ["crd/videogenerationjobs.framefleet.dev", "crd/acceleratedmodels.framefleet.dev"];
  if (!kubectl(env, ["wait", "--for=condition=Established", "--timeout=1s", ...crdNames]).ok) {
    const crds = kubectl(env, ["apply", "--server-side", "--field-manager=e2e", "-f", join(REPO, "crds")]);
    if (!crds.ok) throw new Error(crds.err);
    kubectl(env, ["wait", "--for=condition=Established", ...crdNames]);
  }
  return {
    env,
    cleanup: async () => {
      env.client.close();
      await cluster.cleanup();
    },
  };
}

/** Which engine e2e workers run: the native one on the bundled model when both are built, else synthetic. */
export function e2eModelSource(
  workDir: string,
  prefer: "native" | "synthetic" = process.env.FRAMEFLEET_E2E_ENGINE === "synthetic" ? "synthetic" : "native",
): {
  source: Record<string, unknown>;
  engine: "native" | "synthetic";
  vocab: string[];
} {
  const bundled = join(REPO, "models/tiny-shapes");
  const nativeBuilt =
    readdirSync(join(REPO, "native")).includes("build") && statSafe(join(REPO, "src/native/index.ts"));
  if (prefer === "native" && statSafe(join(bundled, "dit.safetensors")) && nativeBuilt) {
    return {
      source: { builtin: "tiny-shapes" },
      engine: "native",
      vocab: readFileSync(join(bundled, "vocab.txt"), "utf8").split("\n"),
    };
  }
  const vocab = ["<pad>", "<bos>", ...TEST_WORDS];
  writeModelDir(join(workDir, "model"), TEST_CONFIG, vocab);
  return { source: { hostPath: join(workDir, "model") }, engine: "synthetic", vocab };
}

function statSafe(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
