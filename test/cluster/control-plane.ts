// Starts and stops a local Kubernetes control plane from test/cluster/bin/framefleet-cluster:
// embedded etcd, kube-apiserver (TLS, service-account keys, Node+RBAC authorization),
// kube-scheduler, kube-controller-manager, and the process kubelet for the virtual nodes.
// Every component is its own process group, recorded in <dir>/state.json so `down` (from any
// process) can stop them; every port is a free loopback port.
import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeClient } from "./kube-client.ts";
import { storageClass } from "./kubelet/provisioner.ts";
import { killGroup, recordedPodProcesses } from "./process-group.ts";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const clusterBinary = join(repoRoot, "test", "cluster", "bin", "framefleet-cluster");
/**
 * The cluster folder when none is given: the test run's cluster (FRAMEFLEET_CLUSTER_DIR, set by
 * scripts/run-tests.mjs) inside a test run, else .framefleet/cluster.
 */
export const defaultClusterDir = resolve(
  process.env.FRAMEFLEET_CLUSTER_DIR ?? join(repoRoot, ".framefleet", "cluster"),
);
/** The admin kubeconfig of the default cluster (`npm run cluster -- up`). */
export const defaultKubeconfig = join(repoRoot, ".framefleet", "kubeconfig");
export const defaultNodes = "h100=2,rtx5090=2,cpu=1";

const components = ["etcd", "apiserver", "scheduler", "controller-manager", "kubelet"] as const;
type Component = (typeof components)[number];

export interface ClusterState {
  dir: string;
  kubeconfig: string;
  server: string;
  nodes: string;
  pids: Partial<Record<Component, number>>;
  startedAt: string;
}

export interface UpOptions {
  dir?: string;
  nodes?: string;
  /** Where to write the admin kubeconfig (default: <dir>/kubeconfig, plus .framefleet/kubeconfig for the default dir). */
  kubeconfig?: string;
  timeoutMs?: number;
  log?: (line: string) => void;
}

const stateFile = (dir: string) => join(dir, "state.json");

export function readState(dir = defaultClusterDir): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(dir), "utf8")) as ClusterState;
  } catch {
    return undefined;
  }
}

function writeState(state: ClusterState): void {
  writeFileSync(stateFile(state.dir), `${JSON.stringify(state, null, 2)}\n`);
}

/**
 * True when pid is alive (not a zombie) and, given a marker, its command line contains it: a
 * guard against signalling a recycled pid.
 */
export function isOurProcess(pid: number | undefined, marker?: string): boolean {
  if (!pid) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    if (/\) [ZX] /.test(stat)) return false;
    return !marker || readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
  } catch {
    return false;
  }
}

const markers: Record<Component, string> = {
  etcd: "framefleet-cluster",
  apiserver: "framefleet-cluster",
  scheduler: "framefleet-cluster",
  "controller-manager": "framefleet-cluster",
  kubelet: "kubelet",
};
const componentAlive = (state: ClusterState, c: Component) => isOurProcess(state.pids[c], markers[c]);

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

function kubeconfigFor(server: string, pki: string, user: string): string {
  return `${JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "framefleet", cluster: { server, "certificate-authority": join(pki, "ca.crt") } }],
      users: [
        {
          name: user,
          user: { "client-certificate": join(pki, `${user}.crt`), "client-key": join(pki, `${user}.key`) },
        },
      ],
      contexts: [{ name: "framefleet", context: { cluster: "framefleet", user, namespace: "default" } }],
      "current-context": "framefleet",
    },
    null,
    2,
  )}\n`;
}

function startProcess(dir: string, name: Component, command: string, args: string[]): ChildProcess {
  const logFd = openSync(join(dir, "logs", `${name}.log`), "a");
  // From the checkout, so `--import tsx` resolves whatever folder the cluster lives in.
  const child = spawn(command, args, { cwd: repoRoot, detached: true, stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  child.unref();
  return child;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  deadline: number,
  probe: () => Promise<T | undefined>,
  check?: () => void,
) {
  let lastError = "";
  while (Date.now() < deadline) {
    check?.();
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${lastError})` : ""}`);
}

/** RBAC for the process kubelet, which serves every virtual node from one identity. */
const kubeletRbac = [
  {
    path: "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    body: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "framefleet:process-kubelet" },
      rules: [
        {
          apiGroups: [""],
          resources: ["nodes"],
          verbs: ["get", "list", "watch", "create", "update", "patch"],
        },
        { apiGroups: [""], resources: ["nodes/status", "pods/status"], verbs: ["get", "update", "patch"] },
        { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch", "delete"] },
        { apiGroups: [""], resources: ["configmaps", "secrets"], verbs: ["get"] },
        { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: ["get", "list"] },
        { apiGroups: [""], resources: ["persistentvolumes"], verbs: ["get", "list", "create", "delete"] },
        { apiGroups: [""], resources: ["serviceaccounts/token"], verbs: ["create"] },
        { apiGroups: ["", "events.k8s.io"], resources: ["events"], verbs: ["create", "patch", "update"] },
        {
          apiGroups: ["coordination.k8s.io"],
          resources: ["leases"],
          verbs: ["get", "create", "update", "patch"],
        },
      ],
    },
  },
  {
    path: "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    body: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "framefleet:process-kubelet" },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "framefleet:process-kubelet",
      },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "framefleet:kubelets" }],
    },
  },
];

/** Is the cluster recorded in `dir` fully running and serving? */
export async function isUp(dir = defaultClusterDir): Promise<ClusterState | undefined> {
  const state = readState(dir);
  if (!state || !components.every((c) => componentAlive(state, c))) return undefined;
  const client = KubeClient.fromKubeconfig(state.kubeconfig);
  try {
    await client.get("/readyz");
    return state;
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

export async function up(options: UpOptions = {}): Promise<ClusterState> {
  const dir = resolve(options.dir ?? defaultClusterDir);
  const log = options.log ?? (() => {});
  const nodes = options.nodes ?? defaultNodes;
  const running = await isUp(dir);
  if (running && running.nodes === nodes) {
    log(`cluster already up (${running.server})`);
    return running;
  }
  if (readState(dir)) await down({ dir, log });
  if (!existsSync(clusterBinary)) {
    throw new Error(`${clusterBinary} is missing: run \`npm run cluster:build\` first (needs Go >= 1.26)`);
  }
  const started = Date.now();
  const deadline = started + (options.timeoutMs ?? 120_000);
  const pki = join(dir, "pki");
  mkdirSync(join(dir, "logs"), { recursive: true });
  for (const name of readdirSync(join(dir, "logs"))) rmSync(join(dir, "logs", name), { force: true });
  const pkiRun = spawn(clusterBinary, ["pki", "--dir", pki], { stdio: "inherit" });
  const pkiCode = await new Promise<number | null>((r) => pkiRun.on("exit", r));
  if (pkiCode !== 0) throw new Error(`framefleet-cluster pki exited ${pkiCode}`);
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfig = options.kubeconfig ?? join(dir, "kubeconfig");
  const configs: Record<string, string> = {
    admin: kubeconfig,
    scheduler: join(dir, "scheduler.kubeconfig"),
    "controller-manager": join(dir, "controller-manager.kubeconfig"),
    kubelet: join(dir, "kubelet.kubeconfig"),
  };
  for (const [user, path] of Object.entries(configs))
    writeFileSync(path, kubeconfigFor(server, pki, user), { mode: 0o600 });
  if (dir === defaultClusterDir && !options.kubeconfig)
    writeFileSync(defaultKubeconfig, kubeconfigFor(server, pki, "admin"));
  const state: ClusterState = {
    dir,
    kubeconfig,
    server,
    nodes,
    pids: {},
    startedAt: new Date().toISOString(),
  };
  const launch = (name: Component, command: string, args: string[]) => {
    const child = startProcess(dir, name, command, args);
    state.pids[name] = child.pid;
    writeState(state);
    return child;
  };
  const exitedEarly = (name: Component) => () => {
    if (!componentAlive(state, name)) {
      const tail = readFileSync(join(dir, "logs", `${name}.log`), "utf8")
        .split("\n")
        .slice(-15)
        .join("\n");
      throw new Error(`${name} exited during start-up; last log lines:\n${tail}`);
    }
  };
  try {
    launch("etcd", clusterBinary, [
      "etcd",
      "--data-dir",
      join(dir, "etcd"),
      "--listen-client",
      `http://127.0.0.1:${etcdClient}`,
      "--listen-peer",
      `http://127.0.0.1:${etcdPeer}`,
    ]);
    launch("apiserver", clusterBinary, [
      "apiserver",
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${pki}`,
      `--tls-cert-file=${join(pki, "apiserver.crt")}`,
      `--tls-private-key-file=${join(pki, "apiserver.key")}`,
      `--client-ca-file=${join(pki, "ca.crt")}`,
      `--kubelet-client-certificate=${join(pki, "apiserver-kubelet-client.crt")}`,
      `--kubelet-client-key=${join(pki, "apiserver-kubelet-client.key")}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${join(pki, "sa.pub")}`,
      `--service-account-signing-key-file=${join(pki, "sa.key")}`,
      "--authorization-mode=Node,RBAC",
      "--service-cluster-ip-range=10.0.0.0/24",
      // The "kubernetes" Service cannot point at a loopback address; nothing in-cluster needs it.
      "--endpoint-reconciler-type=none",
      "--enable-priority-and-fairness=false",
      "--profiling=false",
    ]);
    const admin = KubeClient.fromKubeconfig(kubeconfig);
    try {
      await waitFor(
        "the API server's /readyz",
        deadline,
        async () => admin.request("GET", "/readyz").then(() => true),
        () => {
          exitedEarly("etcd")();
          exitedEarly("apiserver")();
        },
      );
      log(`apiserver ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      for (const { path, body } of kubeletRbac) await admin.ensure(path, body);
      await admin.ensure("/apis/storage.k8s.io/v1/storageclasses", storageClass);
      const common = ["--leader-elect=false", "--secure-port=0"];
      launch("scheduler", clusterBinary, ["scheduler", `--kubeconfig=${configs.scheduler}`, ...common]);
      launch("controller-manager", clusterBinary, [
        "controller-manager",
        `--kubeconfig=${configs["controller-manager"]}`,
        ...common,
        "--use-service-account-credentials=true",
        `--service-account-private-key-file=${join(pki, "sa.key")}`,
        `--root-ca-file=${join(pki, "ca.crt")}`,
        `--cluster-signing-cert-file=${join(pki, "ca.crt")}`,
        `--cluster-signing-key-file=${join(pki, "ca.key")}`,
      ]);
      launch("kubelet", process.execPath, [
        "--import",
        "tsx",
        join(repoRoot, "test", "cluster", "kubelet", "main.ts"),
        `--kubeconfig=${configs.kubelet}`,
        `--ca-file=${join(pki, "ca.crt")}`,
        `--state-dir=${dir}`,
        `--nodes=${nodes}`,
      ]);
      const expected = nodes.split(",").reduce((n, part) => n + Number(/=(\d+)/.exec(part)?.[1] ?? 0), 0);
      const checkAll = () => {
        for (const c of ["scheduler", "controller-manager", "kubelet"] as const) exitedEarly(c)();
      };
      await waitFor(
        `${expected} Ready nodes`,
        deadline,
        async () => {
          const list = await admin.get<{
            items: { status?: { conditions?: { type: string; status: string }[] } }[];
          }>("/api/v1/nodes");
          const ready = list.items.filter((n) =>
            n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
          );
          return ready.length >= expected ? true : undefined;
        },
        checkAll,
      );
      // Pods need their namespace's default ServiceAccount and root CA ConfigMap, which the
      // controller-manager creates: their presence also shows it is working.
      await waitFor(
        "the controller-manager (default ServiceAccount)",
        deadline,
        async () => {
          await admin.get("/api/v1/namespaces/default/serviceaccounts/default");
          await admin.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt");
          return true;
        },
        checkAll,
      );
    } finally {
      admin.close();
    }
  } catch (err) {
    await down({ dir, log });
    throw err;
  }
  log(`cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s: ${server}, kubeconfig ${kubeconfig}`);
  return state;
}

async function stopGroup(pid: number, graceMs: number): Promise<void> {
  killGroup(pid, "SIGTERM");
  const until = Date.now() + graceMs;
  while (Date.now() < until && isOurProcess(pid)) await sleep(100);
  // SIGKILL the whole group even when its leader went on SIGTERM: children it left go too.
  killGroup(pid, "SIGKILL");
  while (isOurProcess(pid)) await sleep(50);
}

/** Stops every process of the cluster in `dir` (pods first) and deletes its data. Idempotent. */
export async function down(options: { dir?: string; log?: (line: string) => void } = {}): Promise<boolean> {
  const dir = resolve(options.dir ?? defaultClusterDir);
  const log = options.log ?? (() => {});
  const state = readState(dir);
  const pidsDir = join(dir, "pids");
  let stopped = 0;
  if (state?.pids.kubelet && componentAlive(state, "kubelet")) {
    await stopGroup(state.pids.kubelet, 10_000);
    stopped++;
  }
  // Pod processes the kubelet could not stop (it crashed, or was killed).
  for (const pid of recordedPodProcesses(pidsDir)) {
    await stopGroup(pid, 2_000);
    stopped++;
  }
  for (const c of ["controller-manager", "scheduler", "apiserver", "etcd"] as const) {
    const pid = state?.pids[c];
    if (pid && state && componentAlive(state, c)) {
      await stopGroup(pid, 10_000);
      stopped++;
    }
  }
  for (const name of ["etcd", "pods", "pvcs", "pids", "state.json"])
    rmSync(join(dir, name), { recursive: true, force: true });
  log(state ? `cluster down (${stopped} process groups stopped)` : "cluster was not running");
  return state !== undefined;
}
