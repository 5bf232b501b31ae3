// The report of one run (DESIGN section 6): what was asked, which knobs ran, how long each stage
// took, and where the files are. `framefleet generate --json` prints it; the worker copies
// output and timings into the job's status; the bench reads timings.
import { z } from "zod";
import { OUTPUT_FORMATS } from "../api/job.ts";
import { ATTENTION, LINEAR, SAMPLERS, WEIGHTS } from "../api/knobs.ts";

const seconds = z.number().min(0);

export const StageTimingsSchema = z.strictObject({
  /** Loading the model; set by callers that load it for this run (the CLI), absent otherwise. */
  load: seconds.optional(),
  validate: seconds,
  textEncode: seconds,
  denoise: seconds,
  decode: seconds,
  /** Writing the video file (ffmpeg or the built-in encoder). */
  encode: seconds,
  preview: seconds,
  /** Wall time of the pipeline from the request to the last file renamed into place, without load. */
  total: seconds,
});
export type StageTimings = z.infer<typeof StageTimingsSchema>;

export const ReportSchema = z.strictObject({
  model: z.string(),
  modelDir: z.string(),
  profile: z.string(),
  knobs: z.strictObject({
    weights: z.enum(WEIGHTS),
    sampler: z.enum(SAMPLERS),
    steps: z.number().int().positive(),
    guidanceScale: z.number(),
    attention: z.enum(ATTENTION),
    slaTopK: z.number().optional(),
    linear: z.enum(LINEAR),
    teaCache: z.number(),
  }),
  /** Network evaluations run by the denoiser. */
  nfe: z.number().int().min(0),
  /** The engine backend that ran the model, with its threads and instruction sets. */
  backend: z.string(),
  prompt: z.string(),
  negativePrompt: z.string(),
  seed: z.number().int().min(0),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  frames: z.number().int().positive(),
  fps: z.number().positive(),
  attempt: z.number().int().min(1),
  timings: StageTimingsSchema,
  output: z.strictObject({
    path: z.string(),
    /** What was written: the requested format, or apng when ffmpeg was missing. */
    format: z.enum([...OUTPUT_FORMATS, "apng"]),
    requestedFormat: z.enum(OUTPUT_FORMATS),
    /** Bytes of the file (all frames for png-frames). */
    bytes: z.number().int().min(0),
    /** sha256 of the file; for png-frames, of the frame files' hashes in order. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** Why the written format differs from the requested one, when it does. */
    note: z.string().optional(),
  }),
  preview: z.strictObject({ path: z.string() }),
  /** Where this report was written as JSON. */
  report: z.string(),
});
export type Report = z.infer<typeof ReportSchema>;
