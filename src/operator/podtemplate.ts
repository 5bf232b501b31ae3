// Worker pods, built from a model and a GPU class. The operator owns them directly (ownerReference
// to the model, like KubeRay's worker pods): the class gives nodeSelector, tolerations and the
// device resource; the pod runs non-root with a read-only root filesystem, no capabilities and
// the RuntimeDefault seccomp profile; probes gate traffic on the model being loaded.
import { API_VERSION, type GpuClass, MODEL_KIND } from "../api/index.ts";
import type { KubeObject } from "../kube/index.ts";
import { COMPONENT_LABEL, GPU_CLASS_LABEL, MODEL_LABEL, type ModelObject } from "./kinds.ts";

/**
 * Ports worker pods serve /healthz, /readyz and /metrics on: each pod gets its own port from this
 * range. On real nodes any port would do (every pod has its own network namespace); distinct
 * ports let workers share one host, as on the process nodes of the local control plane.
 */
export const WORKER_PORTS = { first: 20_000, count: 10_000 } as const;
export const OUTPUT_MOUNT = "/var/run/framefleet/output";
export const MODEL_MOUNT = "/var/run/framefleet/model";
export const WORKER_COMPONENT = "worker";

/** Labels every worker pod of a model carries; also the scale subresource's selector. */
export function workerSelector(model: string): Record<string, string> {
  return { [MODEL_LABEL]: model, [COMPONENT_LABEL]: WORKER_COMPONENT };
}

export const selectorString = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

export interface WorkerPodOptions {
  image: string;
  serviceAccount: string;
  /** Seconds a worker's lease on a job lasts; passed on so the worker renews in time. */
  leaseSeconds: number;
  /** Extra worker arguments (for example a load-test engine mode). */
  extraArgs?: string[];
  /** The pod's port, from pickPort. */
  port: number;
}

/** A port of WORKER_PORTS that none of `used` holds, starting from a random point. */
export function pickPort(used: ReadonlySet<number>, random: () => number = Math.random): number {
  const start = Math.floor(random() * WORKER_PORTS.count);
  for (let i = 0; i < WORKER_PORTS.count; i++) {
    const port = WORKER_PORTS.first + ((start + i) % WORKER_PORTS.count);
    if (!used.has(port)) return port;
  }
  throw new Error(`all ${WORKER_PORTS.count} worker ports are in use`);
}

/** The port a worker pod serves on (its first container port). */
export function podPort(pod: { spec?: unknown }): number | undefined {
  const spec = pod.spec as { containers?: Array<{ ports?: Array<{ containerPort?: number }> }> } | undefined;
  return spec?.containers?.[0]?.ports?.[0]?.containerPort;
}

export function workerPod(
  model: ModelObject,
  className: string,
  cls: GpuClass,
  opts: WorkerPodOptions,
): KubeObject {
  const name = model.metadata.name as string;
  const spec = model.spec;
  const labels = {
    ...workerSelector(name),
    [GPU_CLASS_LABEL]: className,
    "app.kubernetes.io/name": "framefleet",
    "app.kubernetes.io/instance": name,
    "app.kubernetes.io/managed-by": "framefleet-operator",
  };
  const volumes: Record<string, unknown>[] = [
    { name: "tmp", emptyDir: {} },
    spec.output.pvc
      ? { name: "output", persistentVolumeClaim: { claimName: spec.output.pvc.claimName } }
      : { name: "output", emptyDir: {} },
  ];
  const mounts: Record<string, unknown>[] = [
    { name: "tmp", mountPath: "/tmp" },
    { name: "output", mountPath: OUTPUT_MOUNT },
  ];
  const args = ["worker", "--model-name", name, "--gpu-class", className, "--output-dir", OUTPUT_MOUNT];
  const src = spec.source;
  if (src.builtin) {
    args.push("--builtin", src.builtin);
  } else if (src.hostPath) {
    volumes.push({ name: "model", hostPath: { path: src.hostPath, type: "Directory" } });
    mounts.push({ name: "model", mountPath: MODEL_MOUNT, readOnly: true });
    args.push("--model-dir", MODEL_MOUNT);
  } else if (src.pvc) {
    volumes.push({ name: "model", persistentVolumeClaim: { claimName: src.pvc.claimName, readOnly: true } });
    mounts.push({
      name: "model",
      mountPath: MODEL_MOUNT,
      subPath: src.pvc.path || undefined,
      readOnly: true,
    });
    args.push("--model-dir", MODEL_MOUNT);
  } else if (src.http) {
    args.push("--model-url", src.http.url, "--model-sha256", src.http.sha256, "--model-dir", "/tmp/model");
  }
  args.push(
    "--lease-seconds",
    String(opts.leaseSeconds),
    "--port",
    String(opts.port),
    ...(opts.extraArgs ?? []),
  );

  const requests: Record<string, string> = {
    cpu: "1",
    memory: `${Math.ceil(cls.memoryGiB / 4)}Gi`,
    ...spec.workers.resources?.requests,
  };
  const limits: Record<string, string> = { ...spec.workers.resources?.limits };
  if (cls.resource) {
    // Extended resources must have equal requests and limits.
    requests[cls.resource] = String(spec.workers.gpusPerWorker);
    limits[cls.resource] = String(spec.workers.gpusPerWorker);
  }
  const probe = (path: string, extra: Record<string, number>) => ({
    httpGet: { path, port: opts.port },
    periodSeconds: 2,
    timeoutSeconds: 2,
    ...extra,
  });
  const fieldEnv = (envName: string, fieldPath: string) => ({
    name: envName,
    valueFrom: { fieldRef: { fieldPath } },
  });
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: `${name}-${className}-`,
      namespace: model.metadata.namespace,
      labels,
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: MODEL_KIND,
          name,
          uid: model.metadata.uid as string,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      serviceAccountName: opts.serviceAccount,
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      nodeSelector: { ...cls.nodeSelector, ...spec.workers.nodeSelector },
      tolerations: [...cls.tolerations, ...(spec.workers.tolerations ?? [])],
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        fsGroup: 65532,
        seccompProfile: { type: "RuntimeDefault" },
      },
      containers: [
        {
          name: "worker",
          image: spec.workers.image ?? opts.image,
          args,
          ports: [{ name: "http", containerPort: opts.port }],
          env: [
            fieldEnv("POD_NAME", "metadata.name"),
            fieldEnv("POD_NAMESPACE", "metadata.namespace"),
            fieldEnv("NODE_NAME", "spec.nodeName"),
            // The worker listens on its pod IP, so workers sharing a host (process nodes) never collide.
            fieldEnv("POD_IP", "status.podIP"),
            ...(spec.workers.env ?? []),
          ],
          resources: { requests, ...(Object.keys(limits).length ? { limits } : {}) },
          volumeMounts: mounts,
          startupProbe: probe("/healthz", { failureThreshold: 150 }),
          // Generous: a worker loading a large model must not flap between not-ready verdicts.
          readinessProbe: probe("/readyz", { failureThreshold: 15 }),
          livenessProbe: probe("/healthz", { failureThreshold: 5, periodSeconds: 5 }),
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ["ALL"] },
            seccompProfile: { type: "RuntimeDefault" },
          },
        },
      ],
      volumes,
    },
  };
}
