// VideoGenerationJob: one text-to-video request, queued, dispatched to a worker and tracked to its video.
import { z } from "zod";
import {
  API_VERSION,
  conditionsField,
  described,
  dnsLabel,
  ObjectMetaSchema,
  relativePath,
} from "./common.ts";
import { KnobsSchema, RCM_MAX_STEPS } from "./knobs.ts";

export const JOB_KIND = "VideoGenerationJob";
export const JOB_PLURAL = "videogenerationjobs";

export const JobConditionType = {
  Accepted: "Accepted",
  Running: "Running",
  Succeeded: "Succeeded",
  Failed: "Failed",
} as const;
export const JobReason = {
  Queued: "Queued",
  Suspended: "Suspended",
  ModelNotFound: "ModelNotFound",
  ModelNotReady: "ModelNotReady",
  InvalidSpec: "InvalidSpec",
  UnknownGpuClass: "UnknownGpuClass",
  DoesNotFit: "DoesNotFit",
  UnknownWords: "UnknownWords",
  Assigned: "Assigned",
  Generating: "Generating",
  Completed: "Completed",
  BackoffLimitExceeded: "BackoffLimitExceeded",
  DeadlineExceeded: "DeadlineExceeded",
  WorkerLost: "WorkerLost",
  LeaseExpired: "LeaseExpired",
  Requeued: "Requeued",
  Cancelled: "Cancelled",
  PipelineError: "PipelineError",
} as const;

export const JOB_PHASES = ["Pending", "Queued", "Running", "Succeeded", "Failed", "Cancelled"] as const;
export const OUTPUT_FORMATS = ["mp4", "webp", "png-frames"] as const;

/** Bounds of the schema; a model may allow less (its config.json), never more. */
export const LIMITS = {
  promptMaxLength: 500,
  minSide: 16,
  maxSide: 1280,
  spatialMultiple: 16,
  maxFrames: 257,
  maxFps: 60,
  maxSteps: 200,
  maxPriority: 1_000_000,
} as const;

export const VideoSchema = described(
  z.strictObject({
    width: described(
      z.number().int().min(LIMITS.minSide).max(LIMITS.maxSide).multipleOf(LIMITS.spatialMultiple),
      `Width in pixels, a multiple of ${LIMITS.spatialMultiple} (the model's spatial grid: 8x VAE times 2x2 patches). Default: 128.`,
    ).default(128),
    height: described(
      z.number().int().min(LIMITS.minSide).max(LIMITS.maxSide).multipleOf(LIMITS.spatialMultiple),
      `Height in pixels, a multiple of ${LIMITS.spatialMultiple}. Default: 128.`,
    ).default(128),
    frames: described(
      z.number().int().min(1).max(LIMITS.maxFrames),
      "Number of frames, of the form 1 + 4k (the VAE's causal 4x temporal grid). Default: 33.",
      [
        {
          cel: "(self - 1) % 4 == 0",
          message: "must be 1 + 4k",
          check: (n) => ((n - 1) % 4 === 0 ? undefined : `must be 1 + 4k (got ${n})`),
        },
      ],
    ).default(33),
    fps: described(
      z.number().int().min(1).max(LIMITS.maxFps),
      "Frames per second of the written video. Default: 16.",
    ).default(16),
  }),
  "Size and frame rate of the video.",
);

export const SamplingSchema = described(
  z.strictObject({
    steps: described(
      z.number().int().min(1).max(LIMITS.maxSteps),
      "Sampling steps; default from the profile (50 for baseline, 4 for turbo).",
    ).optional(),
    guidanceScale: described(
      z.number().min(0).max(30),
      "Classifier-free guidance scale (euler sampler only); default from the profile.",
    ).optional(),
  }),
  "Sampling settings that override the profile's.",
);

export const JobOutputSchema = described(
  z.strictObject({
    format: described(
      z.enum(OUTPUT_FORMATS),
      "mp4 (H.264), webp (animated) or png-frames. Default: mp4.",
    ).default("mp4"),
    path: relativePath(
      1,
      512,
      "File path under the model's output volume; default: <namespace>/<job name>.<ext>.",
    ).optional(),
  }),
  "Where and how the video is written.",
);

export const VideoGenerationJobSpecSchema = described(
  z.strictObject({
    model: described(
      dnsLabel("x"),
      "Name of the AcceleratedModel in the same namespace that generates this job. Immutable.",
      [
        {
          cel: "self == oldSelf",
          message: "spec.model is immutable",
        },
      ],
    ),
    prompt: described(
      z.string().min(1).max(LIMITS.promptMaxLength),
      `What to generate, at most ${LIMITS.promptMaxLength} characters; every word must be in the model's vocabulary.`,
    ),
    negativePrompt: described(
      z.string().max(LIMITS.promptMaxLength),
      "What to steer away from (the unconditional pass of classifier-free guidance). Default: empty.",
    ).optional(),
    seed: described(
      z.number().int().min(0).max(4294967295),
      "Noise seed, 0 to 2^32-1; the same seed, settings and machine give the same video. Default: derived from the job's UID.",
    ).optional(),
    video: VideoSchema.default({ width: 128, height: 128, frames: 33, fps: 16 }),
    sampling: SamplingSchema.optional(),
    profile: described(dnsLabel("x"), "Acceleration profile of the model to use. Default: turbo.").default(
      "turbo",
    ),
    acceleration: KnobsSchema.optional(),
    gpuClasses: described(
      z.array(dnsLabel("A GPU class name.")).min(1).max(16),
      "GPU classes this job may run on, in order of preference; must be among the model's. Default: the model's.",
    ).optional(),
    priority: described(
      z.number().int().min(0).max(LIMITS.maxPriority),
      "Higher runs first; ties go to the older job. Default: 0.",
    ).default(0),
    activeDeadlineSeconds: described(
      z.number().int().min(1).max(604800),
      "Seconds from the first start after which the job fails with DeadlineExceeded.",
    ).optional(),
    backoffLimit: described(
      z.number().int().min(0).max(20),
      "Retries after retryable failures (lost workers, expired leases) before the job fails. Default: 3.",
    ).default(3),
    suspend: described(
      z.boolean(),
      "True holds the job out of the queue and cancels a running attempt. Default: false.",
    ).default(false),
    ttlSecondsAfterFinished: described(
      z.number().int().min(0).max(31536000),
      "Seconds after completion (Succeeded, Failed or Cancelled) after which the job object is deleted.",
    ).optional(),
    output: JobOutputSchema.default({ format: "mp4" }),
  }),
  "Desired state of a VideoGenerationJob.",
  [
    {
      cel: `!has(self.acceleration) || !has(self.acceleration.sampler) || self.acceleration.sampler != 'rcm' || !has(self.sampling) || !has(self.sampling.steps) || self.sampling.steps <= ${RCM_MAX_STEPS}`,
      message: `the rcm sampler runs 1 to ${RCM_MAX_STEPS} steps`,
      fieldPath: ".sampling.steps",
      check: (s) =>
        s.acceleration?.sampler === "rcm" &&
        s.sampling?.steps !== undefined &&
        s.sampling.steps > RCM_MAX_STEPS
          ? `the rcm sampler runs 1 to ${RCM_MAX_STEPS} steps (got ${s.sampling.steps})`
          : undefined,
    },
    {
      cel: "!has(self.acceleration) || !has(self.acceleration.slaTopK) || (has(self.acceleration.attention) && self.acceleration.attention == 'sla')",
      message: "slaTopK applies only with attention: sla",
      fieldPath: ".acceleration.slaTopK",
      check: (s) =>
        s.acceleration?.slaTopK !== undefined && s.acceleration.attention !== "sla"
          ? "slaTopK applies only with attention: sla"
          : undefined,
    },
  ],
);

export const AssignmentSchema = described(
  z.strictObject({
    worker: described(z.string(), "Name of the worker pod that owns the attempt."),
    node: described(z.string(), "Node of the worker pod.").optional(),
    gpuClass: described(z.string(), "GPU class of the worker.").optional(),
    attempt: described(
      z.number().int().min(1),
      "Attempt number; every status write of the worker is fenced on it.",
    ),
    renewTime: described(
      z.iso.datetime({ offset: true }),
      "When the worker last renewed its lease on the job.",
    ).optional(),
    leaseSeconds: described(
      z.number().int().min(1),
      "The attempt is requeued when renewTime has not changed for this long, timed by the operator's clock from when it saw the last change.",
    ).optional(),
  }),
  "The current attempt's worker, written only by the dispatcher.",
);

export const JobStatusSchema = described(
  z.strictObject({
    phase: described(z.enum(JOB_PHASES), "Summary for the printer column.").optional(),
    observedGeneration: described(
      z.number().int().min(0),
      "The .metadata.generation this status describes.",
    ).optional(),
    conditions: conditionsField("job").optional(),
    queuePosition: described(
      z.number().int().min(1),
      "1-based position among queued jobs of the model (priority, then age).",
    ).optional(),
    attempts: described(z.number().int().min(0), "Attempts started so far.").optional(),
    assignment: AssignmentSchema.optional(),
    progress: described(
      z.strictObject({
        stage: described(z.string(), "Pipeline stage: validate, encode-text, denoise, decode, write."),
        step: described(z.number().int().min(0), "Steps done in the stage."),
        totalSteps: described(z.number().int().min(0), "Steps in the stage."),
        percent: described(
          z.number().int().min(0).max(100),
          "Overall progress of the attempt, for the printer column.",
        ),
      }),
      "Progress of the running attempt, updated about once a second.",
    ).optional(),
    startTime: described(z.iso.datetime({ offset: true }), "When the first attempt started.").optional(),
    completionTime: described(z.iso.datetime({ offset: true }), "When the job finished.").optional(),
    output: described(
      z.strictObject({
        uri: described(z.string(), "Where the video is, e.g. pvc://claim/path or file:///path."),
        bytes: described(z.number().int().min(0), "Size of the file."),
        sha256: described(z.string(), "SHA-256 of the file."),
        width: described(z.number().int().min(0), "Width in pixels."),
        height: described(z.number().int().min(0), "Height in pixels."),
        frames: described(z.number().int().min(0), "Number of frames."),
      }),
      "The written video.",
    ).optional(),
    timings: described(
      z.strictObject({
        queue: described(z.number().min(0), "Seconds from creation (or requeue) to dispatch.").optional(),
        load: described(
          z.number().min(0),
          "Seconds the worker spent loading the model for this job (0 when already loaded).",
        ).optional(),
        textEncode: described(z.number().min(0), "Seconds encoding the prompt.").optional(),
        denoise: described(z.number().min(0), "Seconds in the denoising loop.").optional(),
        decode: described(z.number().min(0), "Seconds decoding latents to frames.").optional(),
        encode: described(z.number().min(0), "Seconds writing the video file.").optional(),
        total: described(z.number().min(0), "Seconds from dispatch to the recorded output.").optional(),
        gpuSeconds: described(
          z.number().min(0),
          "Device-seconds used: total times devices held (0 on CPU classes).",
        ).optional(),
      }),
      "Seconds spent per stage of the successful attempt, and device-seconds used.",
    ).optional(),
    reason: described(z.string(), "CamelCase reason of the last phase change.").optional(),
    message: described(z.string(), "Human-readable message of the last phase change.").optional(),
  }),
  "Observed state of a VideoGenerationJob.",
);

export const VideoGenerationJobSchema = described(
  z.strictObject({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(JOB_KIND),
    metadata: ObjectMetaSchema,
    spec: VideoGenerationJobSpecSchema,
    status: JobStatusSchema.optional(),
  }),
  "A VideoGenerationJob: one text-to-video request.",
);

export type VideoGenerationJob = z.infer<typeof VideoGenerationJobSchema>;
export type VideoGenerationJobSpec = z.infer<typeof VideoGenerationJobSpecSchema>;
export type JobStatus = z.infer<typeof JobStatusSchema>;
export type Assignment = z.infer<typeof AssignmentSchema>;
