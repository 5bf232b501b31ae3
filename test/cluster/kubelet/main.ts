// The process kubelet: registers the virtual nodes, keeps their Leases and Ready status fresh,
// and runs every pod bound to one of them as local processes (pod-worker.ts).
//
//   node --import tsx test/cluster/kubelet/main.ts --kubeconfig K --nodes h100=2,cpu=1 \
//     --state-dir DIR [--images test/cluster/images.yaml]
import { appendFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { credentialsFromKubeconfig, KubeClient, KubeError } from "../kube-client.ts";
import { killGroup, recordedPodProcesses } from "../process-group.ts";
import { loadImageMap } from "./images.ts";
import { parseNodeSpec, postStatus, registerNode, renewLease, type VirtualNode } from "./nodes.ts";
import { GpuAllocator, type KubeletContext, PodWorker } from "./pod-worker.ts";
import { provisionOnce } from "./provisioner.ts";
import type { Pod } from "./types.ts";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "..", "..", "..");
const leaseRenewMs = 10_000;
const statusRenewMs = 30_000;

const { values } = parseArgs({
  options: {
    kubeconfig: { type: "string" },
    nodes: { type: "string", default: "h100=2,rtx5090=2,cpu=1" },
    "state-dir": { type: "string" },
    "ca-file": { type: "string" },
    images: { type: "string", default: join(repoRoot, "test", "cluster", "images.yaml") },
  },
});
if (!values.kubeconfig || !values["state-dir"] || !values["ca-file"]) {
  console.error(
    "usage: kubelet --kubeconfig FILE --state-dir DIR --ca-file FILE [--nodes SPEC] [--images FILE]",
  );
  process.exit(2);
}
const stateDir = resolve(values["state-dir"]);
const logFile = join(stateDir, "logs", "kubelet.log");
const log = (line: string) => appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`);

const nodes: VirtualNode[] = parseNodeSpec(values.nodes);
const nodeNames = new Set(nodes.map((n) => n.name));
const credentials = credentialsFromKubeconfig(values.kubeconfig);
const client = new KubeClient(credentials);
const ctx: KubeletContext = {
  client,
  server: credentials.server,
  caFile: resolve(values["ca-file"]),
  stateDir,
  images: loadImageMap(values.images, repoRoot),
  imageMapPath: values.images,
  gpus: new GpuAllocator(new Map(nodes.map((n) => [n.name, n.gpus]))),
  log,
};
const workers = new Map<string, PodWorker>();
const abort = new AbortController();
let shuttingDown = false;

function handle(type: string, pod: Pod): void {
  if (!pod.spec.nodeName || !nodeNames.has(pod.spec.nodeName)) return;
  const uid = pod.metadata.uid;
  let worker = workers.get(uid);
  if (type === "DELETED") {
    // Force-deleted (or finished deleting): processes go at once.
    if (worker) void worker.terminate(0, false).finally(() => workers.delete(uid));
    return;
  }
  const terminal = pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
  if (!worker) {
    if (terminal && pod.metadata.deletionTimestamp) {
      void client
        .delete(`/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`, {
          gracePeriodSeconds: 0,
          preconditions: { uid },
        })
        .catch(() => {});
      return;
    }
    if (terminal) return;
    worker = new PodWorker(ctx, pod);
    workers.set(uid, worker);
    worker.start();
  } else {
    worker.update(pod);
  }
  if (pod.metadata.deletionTimestamp) {
    const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
    void worker
      .terminate(grace, true)
      .catch((err) => log(`${worker?.key}: delete failed: ${err instanceof Error ? err.message : err}`));
  }
}

async function watchPods(): Promise<void> {
  const path = "/api/v1/pods?fieldSelector=spec.nodeName%21%3D";
  while (!shuttingDown) {
    try {
      const list = await client.get<{ metadata: { resourceVersion: string }; items: Pod[] }>(path);
      const present = new Set<string>();
      for (const pod of list.items) {
        present.add(pod.metadata.uid);
        handle("ADDED", pod);
      }
      for (const [uid, worker] of workers) {
        if (!present.has(uid)) void worker.terminate(0, false).finally(() => workers.delete(uid));
      }
      let version = list.metadata.resourceVersion;
      for (;;) {
        version = await client.watch<Pod>(path, version, (e) => handle(e.type, e.object), abort.signal);
        if (shuttingDown) return;
      }
    } catch (err) {
      if (shuttingDown) return;
      if (!(err instanceof KubeError && err.status === 410)) {
        log(`pod watch: ${err instanceof Error ? err.message : err}; relisting`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}

async function heartbeat(fn: (c: KubeClient, n: VirtualNode) => Promise<void>, what: string): Promise<void> {
  await Promise.all(
    nodes.map((n) =>
      fn(client, n).catch((err) =>
        log(`${n.name}: ${what} failed: ${err instanceof Error ? err.message : err}`),
      ),
    ),
  );
}

async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`${signal}: stopping ${workers.size} pods`);
  abort.abort();
  await Promise.all([...workers.values()].map((w) => w.terminate(2, false).catch(() => {})));
  client.close();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));

// Containers a previous kubelet of this cluster left behind (it crashed or was SIGKILLed): their
// pods start again from scratch below, as after a node reboot.
for (const pid of recordedPodProcesses(join(stateDir, "pids"))) {
  log(`killing pod process group ${pid} left by a previous kubelet`);
  killGroup(pid, "SIGKILL");
}
for (const node of nodes) await registerNode(client, node);
await heartbeat(renewLease, "lease renewal");
setInterval(() => void heartbeat(renewLease, "lease renewal"), leaseRenewMs);
setInterval(() => void heartbeat(postStatus, "status update"), statusRenewMs);
setInterval(
  () =>
    void provisionOnce(client, stateDir).catch((err) =>
      log(`provisioner: ${err instanceof Error ? err.message : err}`),
    ),
  2000,
);
log(`registered ${nodes.map((n) => n.name).join(", ")}`);
console.log("kubelet: nodes registered");
await watchPods();
