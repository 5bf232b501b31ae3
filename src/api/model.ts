// AcceleratedModel: a model artifact, its acceleration profiles, and the worker pools that serve it.
import { z } from "zod";
import {
  API_VERSION,
  conditionsField,
  described,
  dnsLabel,
  ObjectMetaSchema,
  QuantitySchema,
  relativePath,
  TolerationSchema,
} from "./common.ts";
import { ProfileSchema } from "./knobs.ts";

export const MODEL_KIND = "AcceleratedModel";
export const MODEL_PLURAL = "acceleratedmodels";

export const ModelConditionType = { Validated: "Validated", Ready: "Ready" } as const;
export const ModelReason = {
  Valid: "Valid",
  InvalidSpec: "InvalidSpec",
  ArtifactUnavailable: "ArtifactUnavailable",
  ArtifactCorrupt: "ArtifactCorrupt",
  DoesNotFit: "DoesNotFit",
  WorkersReady: "WorkersReady",
  NoWorkers: "NoWorkers",
  ScaledToZero: "ScaledToZero",
  NoCapacity: "NoCapacity",
  UnknownGpuClass: "UnknownGpuClass",
} as const;

export const MODEL_PHASES = ["Pending", "Loading", "Ready", "Degraded", "Failed"] as const;

export const ModelSourceSchema = described(
  z.strictObject({
    builtin: described(
      z.enum(["tiny-shapes"]),
      "A model shipped inside the worker image: tiny-shapes (the bundled text-to-video model).",
    ).optional(),
    pvc: described(
      z.strictObject({
        claimName: dnsLabel("PersistentVolumeClaim holding the model directory, in the model's namespace."),
        path: relativePath(
          0,
          1024,
          "Directory of the model inside the claim (config.json and safetensors). Default: the root.",
        ).default(""),
      }),
      "A model directory on a PersistentVolumeClaim.",
    ).optional(),
    hostPath: described(
      z.string().min(1).max(1024).regex(/^\//, "must be an absolute path"),
      "An absolute directory on every node that may run workers (for development clusters).",
    ).optional(),
    http: described(
      z.strictObject({
        url: described(
          z.url({ protocol: /^https?$/ }).max(2048),
          "URL of a .tar archive of the model directory.",
        ),
        sha256: described(
          z.string().regex(/^[a-f0-9]{64}$/, "must be 64 lower-case hex digits"),
          "SHA-256 of the archive; the download is rejected on mismatch.",
        ),
      }),
      "A model archive downloaded over HTTP(S) and checked against its digest.",
    ).optional(),
  }),
  "Where the model's files come from: exactly one of builtin, pvc, hostPath, http.",
  [
    {
      cel: "(has(self.builtin) ? 1 : 0) + (has(self.pvc) ? 1 : 0) + (has(self.hostPath) ? 1 : 0) + (has(self.http) ? 1 : 0) == 1",
      message: "must set exactly one of builtin, pvc, hostPath, http",
      check: (s) => {
        const n = [s.builtin, s.pvc, s.hostPath, s.http].filter((v) => v !== undefined).length;
        return n === 1 ? undefined : `must set exactly one of builtin, pvc, hostPath, http (got ${n})`;
      },
    },
  ],
);

export const WorkersSchema = described(
  z.strictObject({
    gpusPerWorker: described(
      z.number().int().min(1).max(8),
      "Devices each worker pod requests (ignored by CPU classes). Default: 1.",
    ).default(1),
    image: described(
      z.string().min(1).max(512),
      "Worker container image. Default: the image matching the operator's version, set by the operator.",
    ).optional(),
    resources: described(
      z.strictObject({
        requests: described(
          z.record(z.string(), QuantitySchema),
          "Minimum resources by name, e.g. cpu: 2, memory: 8Gi.",
        ).optional(),
        limits: described(z.record(z.string(), QuantitySchema), "Maximum resources by name.").optional(),
      }),
      "CPU and memory requests and limits of the worker container; the device resource is added by the operator.",
    ).optional(),
    env: described(
      z
        .array(
          z.strictObject({
            name: described(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), "Variable name."),
            value: described(z.string().max(4096), "Variable value."),
          }),
        )
        .max(64),
      "Extra environment variables for worker containers.",
    ).optional(),
    nodeSelector: described(
      z.record(z.string(), z.string()),
      "Extra node labels required in addition to the GPU class's.",
    ).optional(),
    tolerations: described(
      z.array(TolerationSchema).max(32),
      "Extra tolerations in addition to the GPU class's.",
    ).optional(),
  }),
  "How worker pods are built.",
);

export const ScalingSchema = described(
  z.strictObject({
    minWorkers: described(
      z.number().int().min(0).max(1000),
      "Workers kept even with an empty queue (0 scales to zero). Default: 0.",
    ).default(0),
    maxWorkers: described(
      z.number().int().min(1).max(1000),
      "Upper bound on workers across all GPU classes. Default: 4.",
    ).default(4),
    jobsPerWorker: described(
      z.number().int().min(1).max(100),
      "Queued plus running jobs one worker is expected to absorb when sizing pools. Default: 1.",
    ).default(1),
    scaleDownDelaySeconds: described(
      z.number().int().min(0).max(86400),
      "How long a worker must stay idle before it is removed. Default: 60.",
    ).default(60),
  }),
  "Queue-depth autoscaling bounds.",
  [
    {
      cel: "self.minWorkers <= self.maxWorkers",
      message: "minWorkers must be <= maxWorkers",
      fieldPath: ".minWorkers",
      check: (s) =>
        s.minWorkers <= s.maxWorkers
          ? undefined
          : `minWorkers must be <= maxWorkers (got ${s.minWorkers} > ${s.maxWorkers})`,
    },
  ],
);

export const ModelOutputSchema = described(
  z.strictObject({
    pvc: described(
      z.strictObject({ claimName: dnsLabel("PersistentVolumeClaim that receives the videos.") }),
      "Write videos to a PersistentVolumeClaim mounted by every worker (ReadWriteMany for several workers).",
    ).optional(),
    emptyDir: described(
      z.strictObject({}),
      "Write videos to the worker pod's own scratch volume (tests and demos; lost with the pod).",
    ).optional(),
  }),
  "Where workers write videos: exactly one of pvc, emptyDir.",
  [
    {
      cel: "(has(self.pvc) ? 1 : 0) + (has(self.emptyDir) ? 1 : 0) == 1",
      message: "must set exactly one of pvc, emptyDir",
      check: (s) =>
        (s.pvc ? 1 : 0) + (s.emptyDir ? 1 : 0) === 1 ? undefined : "must set exactly one of pvc, emptyDir",
    },
  ],
);

export const AcceleratedModelSpecSchema = described(
  z.strictObject({
    source: ModelSourceSchema,
    profiles: described(
      z.record(dnsLabel("Profile name."), ProfileSchema),
      "Acceleration profiles by name (baseline, turbo, ...); they override the profiles in the model's config.json knob by knob.",
    ).optional(),
    gpuClasses: described(
      z.array(dnsLabel("A GPU class name from the operator's configuration.")).min(1).max(16),
      "GPU classes the worker pools may use, in order of preference. Default: [cpu].",
    ).default(["cpu"]),
    workers: WorkersSchema.default({ gpusPerWorker: 1 }),
    scaling: ScalingSchema.default({
      minWorkers: 0,
      maxWorkers: 4,
      jobsPerWorker: 1,
      scaleDownDelaySeconds: 60,
    }),
    output: ModelOutputSchema.default({ emptyDir: {} }),
    replicas: described(
      z.number().int().min(0).max(1000),
      "Desired workers, written by an external autoscaler (KEDA, HPA) through the scale subresource; used only while the operator's built-in autoscaler is off, and still bounded by minWorkers and maxWorkers.",
    ).optional(),
  }),
  "Desired state of an AcceleratedModel.",
);

export const PoolStatusSchema = described(
  z.strictObject({
    gpuClass: described(z.string(), "GPU class of the pool."),
    desired: described(z.number().int().min(0), "Workers the autoscaler wants in this class."),
    ready: described(z.number().int().min(0), "Workers that passed their readiness probe."),
    busy: described(z.number().int().min(0), "Workers currently running a job."),
  }),
  "One worker pool.",
);

export const AcceleratedModelStatusSchema = described(
  z.strictObject({
    phase: described(
      z.enum(MODEL_PHASES),
      "Summary for the printer column: Pending, Loading, Ready, Degraded or Failed.",
    ).optional(),
    observedGeneration: described(
      z.number().int().min(0),
      "The .metadata.generation this status describes.",
    ).optional(),
    conditions: conditionsField("model").optional(),
    artifact: described(
      z.strictObject({
        sha256: described(
          z.string(),
          "Digest of the model's files (config.json and safetensors, in name order).",
        ).optional(),
        bytes: described(z.number().int().min(0), "Total size of the model's files.").optional(),
        parameters: described(z.number().int().min(0), "Parameter count of the DiT.").optional(),
      }),
      "The resolved model artifact.",
    ).optional(),
    memory: described(
      z.array(
        z.strictObject({
          gpuClass: described(z.string(), "GPU class."),
          requiredGiB: described(z.number().min(0), "Memory a worker needs for the default video size."),
          availableGiB: described(z.number().min(0), "Memory one device of the class offers."),
          fits: described(z.boolean(), "Whether requiredGiB fits in availableGiB."),
        }),
      ),
      "Memory needed per GPU class and whether it fits.",
    ).optional(),
    pools: described(z.array(PoolStatusSchema), "Worker pools by GPU class.").optional(),
    readyWorkers: described(z.number().int().min(0), "Ready workers across all pools.").optional(),
    replicas: described(
      z.number().int().min(0),
      "Worker pods across all pools (the scale subresource's status).",
    ).optional(),
    selector: described(
      z.string(),
      "Label selector of this model's worker pods, for the scale subresource (KEDA, HPA).",
    ).optional(),
    queueDepth: described(z.number().int().min(0), "Queued plus running jobs for this model.").optional(),
  }),
  "Observed state of an AcceleratedModel.",
);

export const AcceleratedModelSchema = described(
  z.strictObject({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(MODEL_KIND),
    metadata: ObjectMetaSchema,
    spec: AcceleratedModelSpecSchema,
    status: AcceleratedModelStatusSchema.optional(),
  }),
  "An AcceleratedModel: a video-generation model, its acceleration profiles, and the worker pools that serve it.",
);

export type AcceleratedModel = z.infer<typeof AcceleratedModelSchema>;
export type AcceleratedModelSpec = z.infer<typeof AcceleratedModelSpecSchema>;
export type AcceleratedModelStatus = z.infer<typeof AcceleratedModelStatusSchema>;
export type PoolStatus = z.infer<typeof PoolStatusSchema>;
