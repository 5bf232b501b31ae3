import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_GPU_CLASSES } from "../api/index.ts";
import type { ModelObject } from "./kinds.ts";
import { pickPort, WORKER_PORTS, workerPod } from "./podtemplate.ts";

const model = {
  apiVersion: "framefleet.dev/v1alpha1",
  kind: "AcceleratedModel",
  metadata: { name: "shapes", namespace: "team", uid: "u-1" },
  spec: {
    source: { builtin: "tiny-shapes" },
    gpuClasses: ["h100", "cpu"],
    workers: { gpusPerWorker: 2, nodeSelector: { zone: "a" } },
    scaling: { minWorkers: 0, maxWorkers: 4, jobsPerWorker: 1, scaleDownDelaySeconds: 60 },
    output: { emptyDir: {} },
  },
} as unknown as ModelObject;

const opts = {
  image: "framefleet/worker-cpu:latest",
  serviceAccount: "framefleet-worker",
  leaseSeconds: 30,
  port: 20_123,
};
type PodSpec = {
  nodeSelector: Record<string, string>;
  tolerations: unknown[];
  securityContext: Record<string, unknown>;
  containers: Array<
    Record<string, unknown> & {
      resources: { requests: Record<string, string>; limits?: Record<string, string> };
    }
  >;
};

describe("worker pod template", () => {
  it("places an h100 worker with the class's selector, toleration and GPU request", () => {
    const pod = workerPod(model, "h100", DEFAULT_GPU_CLASSES.h100 as never, opts);
    const spec = pod.spec as PodSpec;
    assert.deepEqual(spec.nodeSelector, { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", zone: "a" });
    assert.deepEqual(spec.tolerations, [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    const c = spec.containers[0];
    assert.equal(c?.resources.requests["nvidia.com/gpu"], "2");
    assert.equal(c?.resources.limits?.["nvidia.com/gpu"], "2");
  });

  it("asks for no device on the cpu class", () => {
    const spec = workerPod(model, "cpu", DEFAULT_GPU_CLASSES.cpu as never, opts).spec as PodSpec;
    assert.equal(spec.containers[0]?.resources.requests["nvidia.com/gpu"], undefined);
    assert.deepEqual(spec.tolerations, []);
  });

  it("runs restricted: non-root, read-only root, no capabilities, RuntimeDefault seccomp, probes", () => {
    const pod = workerPod(model, "cpu", DEFAULT_GPU_CLASSES.cpu as never, opts);
    const spec = pod.spec as PodSpec;
    assert.equal(spec.securityContext.runAsNonRoot, true);
    const c = spec.containers[0] as Record<string, Record<string, unknown>>;
    assert.deepEqual(c.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) assert.ok(c[probe], probe);
    assert.deepEqual(pod.metadata.ownerReferences?.[0], {
      apiVersion: "framefleet.dev/v1alpha1",
      kind: "AcceleratedModel",
      name: "shapes",
      uid: "u-1",
      controller: true,
      blockOwnerDeletion: true,
    });
    assert.equal(pod.metadata.labels?.["framefleet.dev/gpu-class"], "cpu");
  });
});

describe("worker ports", () => {
  it("gives each worker a port no other worker holds", () => {
    const used = new Set([WORKER_PORTS.first, WORKER_PORTS.first + 1]);
    assert.equal(
      pickPort(used, () => 0),
      WORKER_PORTS.first + 2,
    );
    assert.equal(
      pickPort(new Set(), () => 0.5),
      WORKER_PORTS.first + WORKER_PORTS.count / 2,
    );
  });
});
