// Pods on the virtual nodes: kube-scheduler binds them by GPU labels, taints and capacity, and
// the process kubelet runs them as local processes and reports what happened.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { clusterBinary, readLog, useTestCluster, waitFor } from "../support/cluster.ts";

const cluster = await useTestCluster(import.meta.url);
const scratch = mkdtempSync(join(tmpdir(), "framefleet-pods-"));
after(async () => {
  await cluster.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

interface PodStatus {
  phase?: string;
  reason?: string;
  message?: string;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
  containerStatuses?: {
    name: string;
    ready: boolean;
    restartCount: number;
    state: {
      running?: object;
      waiting?: { reason: string; message?: string };
      terminated?: { exitCode: number; reason: string };
    };
  }[];
}
interface PodObject {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string };
  status?: PodStatus;
}

const h100 = {
  nodeSelector: { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" },
  tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
};
const node = process.execPath;

async function createPod(name: string, spec: Record<string, unknown>): Promise<void> {
  await cluster.client.create(`/api/v1/namespaces/${cluster.namespace}/pods`, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { test: name } },
    spec: { restartPolicy: "Never", terminationGracePeriodSeconds: 2, ...spec },
  });
}

function getPod(name: string): Promise<PodObject> {
  return cluster.client.get<PodObject>(`/api/v1/namespaces/${cluster.namespace}/pods/${name}`);
}

function waitPhase(name: string, phases: string[], timeoutMs = 30_000): Promise<PodObject> {
  return waitFor(
    `pod ${name} in ${phases.join("/")}`,
    async () => {
      const pod = await getPod(name);
      return phases.includes(pod.status?.phase ?? "") ? pod : undefined;
    },
    timeoutMs,
  );
}

/** The PodScheduled=False condition the scheduler writes when no node fits. */
function unschedulable(name: string) {
  return waitFor(`pod ${name} PodScheduled=False`, async () => {
    const pod = await getPod(name);
    return pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("pods on virtual GPU nodes", () => {
  it("binds a one-GPU h100 pod to an H100 node, runs it as a process and reports Succeeded", async () => {
    await createPod("gpu-ok", {
      ...h100,
      containers: [
        {
          name: "main",
          image: "busybox",
          command: [node, "-e", "console.log(JSON.stringify(process.env))"],
          env: [
            { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
            { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
            { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
            { name: "GREETING", value: "hello $(POD_NAME)" },
          ],
          resources: { limits: { "nvidia.com/gpu": "1" } },
        },
      ],
    });
    const pod = await waitPhase("gpu-ok", ["Succeeded", "Failed"]);
    assert.equal(pod.status?.phase, "Succeeded");
    assert.match(pod.spec.nodeName ?? "", /^ff-h100-\d+$/);
    assert.equal(pod.status?.containerStatuses?.[0]?.state.terminated?.exitCode, 0);
    const env = JSON.parse(readLog(cluster.podLog("gpu-ok", "main"))) as Record<string, string>;
    assert.equal(env.POD_NAME, "gpu-ok");
    assert.equal(env.POD_NAMESPACE, cluster.namespace);
    assert.equal(env.NODE_NAME, pod.spec.nodeName);
    assert.equal(env.GREETING, "hello gpu-ok");
    assert.match(env.NVIDIA_VISIBLE_DEVICES ?? "", /^\d$/);
  });

  it("reports exit codes and start errors, and restarts OnFailure containers", async () => {
    const script =
      "const f=process.env.COUNT;const fs=require('fs');const n=fs.existsSync(f)?+fs.readFileSync(f,'utf8'):0;fs.writeFileSync(f,String(n+1));process.exit(n<2?7:0)";
    await createPod("exit-7", {
      containers: [{ name: "main", image: "x", command: [node, "-e", "process.exit(7)"] }],
    });
    await createPod("flaky", {
      restartPolicy: "OnFailure",
      volumes: [{ name: "scratch", emptyDir: {} }],
      containers: [
        {
          name: "main",
          image: "x",
          command: [node, "-e", script],
          env: [{ name: "COUNT", value: "/scratch/count" }],
          volumeMounts: [{ name: "scratch", mountPath: "/scratch" }],
        },
      ],
    });
    await createPod("missing-binary", {
      containers: [{ name: "main", image: "x", command: ["/nonexistent/tool"] }],
    });
    const failed = await waitPhase("exit-7", ["Succeeded", "Failed"]);
    assert.equal(failed.status?.phase, "Failed");
    assert.equal(failed.status?.containerStatuses?.[0]?.state.terminated?.exitCode, 7);
    const missing = await waitPhase("missing-binary", ["Succeeded", "Failed"]);
    assert.equal(missing.status?.phase, "Failed");
    assert.equal(missing.status?.containerStatuses?.[0]?.state.terminated?.reason, "StartError");
    const flaky = await waitPhase("flaky", ["Succeeded", "Failed"]);
    assert.equal(flaky.status?.phase, "Succeeded");
    assert.equal(flaky.status?.containerStatuses?.[0]?.restartCount, 2);
  });

  it("keeps a pod that asks for more GPUs than any node has Pending with the scheduler's reason", async () => {
    await createPod("too-big", {
      ...h100,
      containers: [
        {
          name: "main",
          image: "x",
          command: [node, "-e", ""],
          resources: { limits: { "nvidia.com/gpu": "64" } },
        },
      ],
    });
    const condition = await unschedulable("too-big");
    assert.equal(condition.reason, "Unschedulable");
    assert.match(condition.message ?? "", /Insufficient nvidia\.com\/gpu/);
    const pod = await getPod("too-big");
    assert.equal(pod.status?.phase, "Pending");
    assert.equal(pod.spec.nodeName, undefined);
  });

  it("never puts a pod without the GPU toleration on a GPU node", async () => {
    await createPod("no-toleration", {
      nodeSelector: h100.nodeSelector,
      containers: [{ name: "main", image: "x", command: [node, "-e", ""] }],
    });
    const condition = await unschedulable("no-toleration");
    assert.match(condition.message ?? "", /untolerated taint/);
  });

  it("kills a running pod's processes when the pod is deleted, after the grace period", async () => {
    const out = join(scratch, "delete");
    await createPod("long-running", {
      terminationGracePeriodSeconds: 1,
      volumes: [{ name: "out", hostPath: { path: out, type: "DirectoryOrCreate" } }],
      containers: [
        {
          name: "main",
          image: "x",
          // Ignores SIGTERM, so only the SIGKILL after the grace period ends it.
          command: [
            node,
            "-e",
            "require('fs').writeFileSync(process.env.PID_FILE, String(process.pid)); process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)",
          ],
          env: [{ name: "PID_FILE", value: "/out/pid" }],
          volumeMounts: [{ name: "out", mountPath: "/out" }],
        },
      ],
    });
    await waitPhase("long-running", ["Running"]);
    const pid = await waitFor("the pid file", () => {
      const text = readLog(join(out, "pid"));
      return text ? Number(text) : undefined;
    });
    assert.ok(alive(pid), "the container process runs");
    await cluster.client.delete(`/api/v1/namespaces/${cluster.namespace}/pods/long-running`);
    await waitFor("the pod to be gone", async () => {
      try {
        await getPod("long-running");
        return undefined;
      } catch {
        return true;
      }
    });
    assert.equal(alive(pid), false, "the process was killed");
  });

  it("reports readiness from an HTTP readiness probe", async () => {
    const port = await freePort();
    await createPod("web", {
      containers: [
        {
          name: "web",
          image: "node:20",
          args: ["-e", `require('http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`],
          ports: [{ name: "http", containerPort: port }],
          readinessProbe: { httpGet: { path: "/", port: "http" }, periodSeconds: 1 },
        },
      ],
    });
    const pod = await waitFor("pod web Ready", async () => {
      const p = await getPod("web");
      return p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? p : undefined;
    });
    assert.equal(pod.status?.phase, "Running");
    assert.equal(pod.status?.containerStatuses?.[0]?.ready, true);
  });

  it("provisions a claim of the default StorageClass as a local folder the pod writes into", async () => {
    await cluster.client.create(`/api/v1/namespaces/${cluster.namespace}/persistentvolumeclaims`, {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: "videos" },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    });
    await createPod("writer", {
      volumes: [{ name: "videos", persistentVolumeClaim: { claimName: "videos" } }],
      containers: [
        {
          name: "main",
          image: "node:20",
          args: ["-e", "require('fs').writeFileSync(process.argv[1] + '/hello.txt', 'hi')", "/data/out"],
          volumeMounts: [{ name: "videos", mountPath: "/data/out" }],
        },
      ],
    });
    const pod = await waitPhase("writer", ["Succeeded", "Failed"]);
    assert.equal(pod.status?.phase, "Succeeded", readLog(cluster.podLog("writer", "main")));
    assert.equal(readLog(join(cluster.dir, "pvcs", cluster.namespace, "videos", "hello.txt")), "hi");
  });

  it("fails a pod whose image has no local entrypoint, with the reason", async () => {
    await createPod("no-entrypoint", {
      containers: [{ name: "main", image: "busybox:1.36", args: ["true"] }],
    });
    const pod = await waitPhase("no-entrypoint", ["Failed"]);
    assert.equal(pod.status?.reason, "ImageHasNoLocalEntrypoint");
    assert.match(pod.status?.message ?? "", /busybox:1\.36.*images\.yaml/);
  });

  it("gives the pod its service account's identity, so RBAC applies to it", async () => {
    await createPod("rbac", {
      containers: [{ name: "main", image: "x", command: [clusterBinary, "kubectl", "get", "pods"] }],
    });
    const pod = await waitPhase("rbac", ["Succeeded", "Failed"]);
    assert.equal(pod.status?.phase, "Failed");
    assert.match(
      readLog(cluster.podLog("rbac", "main")),
      new RegExp(`"system:serviceaccount:${cluster.namespace}:default" cannot list resource "pods"`),
    );
  });
});
