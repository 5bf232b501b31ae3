// GPU classes: the operator's configuration of where worker pools may run (Helm values, a
// ConfigMap). A class is a ResourceFlavor in Kueue's sense: a node selector, tolerations, a device
// resource and the memory one device offers.
import { z } from "zod";
import { described, dnsLabel, TolerationSchema } from "./common.ts";

export const GpuClassSchema = described(
  z.strictObject({
    nodeSelector: described(
      z.record(z.string(), z.string()),
      "Labels a node must carry for this class, e.g. nvidia.com/gpu.product. Default: none.",
    ).default({}),
    tolerations: described(
      z.array(TolerationSchema),
      "Tolerations added to worker pods of this class. Default: none.",
    ).default([]),
    memoryGiB: described(
      z.number().gt(0).max(4096),
      "Memory one device of this class offers (GPU memory, or host memory for CPU classes), in GiB.",
    ),
    resource: described(
      z.string().min(1).nullable(),
      "Extended resource requested per device, e.g. nvidia.com/gpu; null for CPU classes. Default: null.",
    ).default(null),
  }),
  "One GPU class.",
);
export type GpuClass = z.infer<typeof GpuClassSchema>;

export const GpuClassesConfigSchema = described(
  z.record(dnsLabel("Name of the class, e.g. h100."), GpuClassSchema),
  "GPU classes by name.",
);
export type GpuClassesConfig = z.infer<typeof GpuClassesConfigSchema>;

/** The classes DESIGN section 2 describes; Helm values start from these. */
export const DEFAULT_GPU_CLASSES: GpuClassesConfig = {
  h100: {
    nodeSelector: { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" },
    memoryGiB: 80,
    resource: "nvidia.com/gpu",
    tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
  },
  rtx5090: {
    nodeSelector: { "nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-5090" },
    memoryGiB: 32,
    resource: "nvidia.com/gpu",
    tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
  },
  cpu: { nodeSelector: {}, memoryGiB: 16, resource: null, tolerations: [] },
};
