// Virtual nodes: the Node objects the process kubelet registers, labelled the way NVIDIA GPU
// Feature Discovery labels real GPU nodes, plus their heartbeats (node Leases and Ready status).
import type { KubeClient } from "../kube-client.ts";
import { isNotFound } from "../kube-client.ts";

export interface GpuClass {
  /** Value of nvidia.com/gpu.product as GPU Feature Discovery reports it. */
  product: string;
  /** nvidia.com/gpu.memory in MiB. */
  memoryMiB: number;
  family: string;
  computeMajor: number;
  computeMinor: number;
  /** GPUs per node when the --nodes spec does not say (class=count:gpus). */
  defaultGpus: number;
}

/** GPU classes a virtual node can have; `cpu` nodes have none. */
export const gpuClasses: Record<string, GpuClass> = {
  h100: {
    product: "NVIDIA-H100-80GB-HBM3",
    memoryMiB: 81559,
    family: "hopper",
    computeMajor: 9,
    computeMinor: 0,
    defaultGpus: 8,
  },
  rtx5090: {
    product: "NVIDIA-GeForce-RTX-5090",
    memoryMiB: 32607,
    family: "blackwell",
    computeMajor: 12,
    computeMinor: 0,
    defaultGpus: 2,
  },
};

/** Label carrying the node's class name (h100, rtx5090, cpu); GPU labels follow GFD. */
export const classLabel = "framefleet.dev/node-class";
export const gpuTaint = { key: "nvidia.com/gpu", value: "present", effect: "NoSchedule" };
export const kubeletVersion = "v1.37.2";

export interface VirtualNode {
  name: string;
  nodeClass: string;
  gpus: number;
}

/**
 * Parses `h100=2,rtx5090=2,cpu=1` (node counts per class; `h100=2:4` gives each node 4 GPUs).
 * Node names are `ff-<class>-<index>`.
 */
export function parseNodeSpec(spec: string): VirtualNode[] {
  const nodes: VirtualNode[] = [];
  for (const part of spec.split(",").map((p) => p.trim())) {
    if (!part) continue;
    const match = /^([a-z0-9]+)=(\d+)(?::(\d+))?$/.exec(part);
    if (!match) {
      throw new Error(`--nodes: "${part}" is not class=count or class=count:gpus (e.g. h100=2,cpu=1)`);
    }
    const [, nodeClass = "", count = "0", gpusText] = match;
    const gpuClass = gpuClasses[nodeClass];
    if (!gpuClass && nodeClass !== "cpu") {
      throw new Error(
        `--nodes: unknown node class "${nodeClass}" (known: ${[...Object.keys(gpuClasses), "cpu"].join(", ")})`,
      );
    }
    const gpus = gpuClass ? Number(gpusText ?? gpuClass.defaultGpus) : 0;
    for (let i = 0; i < Number(count); i++) nodes.push({ name: `ff-${nodeClass}-${i}`, nodeClass, gpus });
  }
  if (nodes.length === 0) throw new Error("--nodes: at least one node is needed");
  return nodes;
}

export function nodeLabels(node: VirtualNode): Record<string, string> {
  const labels: Record<string, string> = {
    "kubernetes.io/hostname": node.name,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "node.kubernetes.io/instance-type": `framefleet-virtual-${node.nodeClass}`,
    [classLabel]: node.nodeClass,
  };
  const gpu = gpuClasses[node.nodeClass];
  if (gpu) {
    Object.assign(labels, {
      "nvidia.com/gpu.present": "true",
      "nvidia.com/gpu.product": gpu.product,
      "nvidia.com/gpu.memory": String(gpu.memoryMiB),
      "nvidia.com/gpu.count": String(node.gpus),
      "nvidia.com/gpu.family": gpu.family,
      "nvidia.com/gpu.compute.major": String(gpu.computeMajor),
      "nvidia.com/gpu.compute.minor": String(gpu.computeMinor),
      "nvidia.com/gpu.machine": "framefleet-virtual",
    });
  }
  return labels;
}

function capacity(node: VirtualNode): Record<string, string> {
  const base = node.gpus > 0 ? { cpu: "32", memory: "256Gi" } : { cpu: "8", memory: "32Gi" };
  return {
    ...base,
    pods: "110",
    "ephemeral-storage": "100Gi",
    ...(node.gpus > 0 ? { "nvidia.com/gpu": String(node.gpus) } : {}),
  };
}

function nodeStatus(node: VirtualNode, now: string) {
  const condition = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  });
  return {
    capacity: capacity(node),
    allocatable: capacity(node),
    conditions: [
      condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "virtual node"),
      condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "virtual node"),
      condition("PIDPressure", "False", "KubeletHasSufficientPID", "virtual node"),
      condition("Ready", "True", "KubeletReady", "process kubelet is posting ready status"),
    ],
    addresses: [
      { type: "InternalIP", address: "127.0.0.1" },
      { type: "Hostname", address: node.name },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
    nodeInfo: {
      machineID: node.name,
      systemUUID: node.name,
      bootID: String(process.pid),
      kernelVersion: "",
      osImage: "framefleet virtual node",
      containerRuntimeVersion: "framefleet-process://1",
      kubeletVersion,
      kubeProxyVersion: "",
      operatingSystem: "linux",
      architecture: "amd64",
    },
  };
}

/** Creates (or refreshes) the Node object, then reports it Ready. */
export async function registerNode(client: KubeClient, node: VirtualNode): Promise<void> {
  const body = {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: node.name, labels: nodeLabels(node) },
    spec: { taints: node.gpus > 0 ? [gpuTaint] : [] },
  };
  const created = await client.ensure("/api/v1/nodes", body);
  if (!created) {
    await client.patch(
      `/api/v1/nodes/${node.name}`,
      { metadata: { labels: body.metadata.labels }, spec: body.spec },
      "merge",
    );
  }
  await postStatus(client, node);
}

/**
 * Full status: conditions, capacity and addresses. Conditions keep their lastTransitionTime
 * from the server via strategic merge (the list is keyed by type).
 */
export async function postStatus(client: KubeClient, node: VirtualNode): Promise<void> {
  await client.patch(
    `/api/v1/nodes/${node.name}/status`,
    { status: nodeStatus(node, new Date().toISOString()) },
    "strategic",
  );
}

export async function renewLease(client: KubeClient, node: VirtualNode): Promise<void> {
  const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${node.name}`;
  const renewTime = new Date().toISOString().replace("Z", "000Z");
  try {
    await client.patch(path, { spec: { holderIdentity: node.name, renewTime } }, "merge");
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await client.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: node.name, namespace: "kube-node-lease" },
      spec: { holderIdentity: node.name, leaseDurationSeconds: 40, renewTime },
    });
  }
}
