// The operator's configuration file (`framefleet operator --config FILE`), rendered by the Helm
// chart into a ConfigMap. Every field documents its default where it is declared.
import { z } from "zod";
import { described } from "./common.ts";
import { DEFAULT_GPU_CLASSES, GpuClassesConfigSchema } from "./gpuclass.ts";

export const OperatorConfigSchema = described(
  z.strictObject({
    gpuClasses: GpuClassesConfigSchema.default(DEFAULT_GPU_CLASSES),
    workerImage: described(
      z.string().min(1),
      "Image of worker pods when a model does not name one. Default: framefleet/worker-cpu:latest.",
    ).default("framefleet/worker-cpu:latest"),
    workerServiceAccount: described(
      z.string().min(1),
      "ServiceAccount worker pods run as, in each model's namespace. Default: framefleet-worker.",
    ).default("framefleet-worker"),
    watchNamespaces: described(
      z.array(z.string().min(1)),
      "Namespaces to watch; empty means all namespaces. Default: [].",
    ).default([]),
    leaderElection: described(
      z.strictObject({
        enabled: described(z.boolean(), "Run only while holding the Lease. Default: true.").default(true),
        leaseName: described(
          z.string().min(1),
          "Name of the coordination.k8s.io Lease. Default: framefleet-operator.",
        ).default("framefleet-operator"),
        namespace: described(
          z.string().min(1),
          "Namespace of the Lease. Default: the operator's own namespace (POD_NAMESPACE), else default.",
        ).optional(),
        leaseDurationSeconds: described(z.number().int().min(1), "Default: 15.").default(15),
        renewDeadlineSeconds: described(z.number().int().min(1), "Default: 10.").default(10),
        retryPeriodSeconds: described(z.number().int().min(1), "Default: 2.").default(2),
      }),
      "Leader election among operator replicas.",
    ).default({
      enabled: true,
      leaseName: "framefleet-operator",
      leaseDurationSeconds: 15,
      renewDeadlineSeconds: 10,
      retryPeriodSeconds: 2,
    }),
    autoscaler: described(
      z.strictObject({
        enabled: described(
          z.boolean(),
          "Size worker pools from queue depth. Turn off when an external autoscaler (KEDA) scales workers. Default: true.",
        ).default(true),
        noCapacityFallbackSeconds: described(
          z.number().int().min(1),
          "How long workers of a class may stay unschedulable before pools fall back to the next class. Default: 60.",
        ).default(60),
      }),
      "The built-in queue-depth autoscaler.",
    ).default({ enabled: true, noCapacityFallbackSeconds: 60 }),
    workerLeaseSeconds: described(
      z.number().int().min(5),
      "A running job whose worker has not renewed its lease for this long is requeued. Default: 30.",
    ).default(30),
    metricsPort: described(z.number().int().min(1).max(65535), "Port of /metrics. Default: 8080.").default(
      8080,
    ),
    healthPort: described(
      z.number().int().min(1).max(65535),
      "Port of /healthz and /readyz. Default: 8081.",
    ).default(8081),
  }),
  "Configuration of the framefleet operator.",
);
export type OperatorConfig = z.infer<typeof OperatorConfigSchema>;
